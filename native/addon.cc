// Entry point of the tcp_repair addon: a thin synchronous layer, one kernel operation per call.
#include <napi.h>

#include "exports.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tcprepair::RegisterRepair(env, exports);
  tcprepair::RegisterQueues(env, exports);
  tcprepair::RegisterSockets(env, exports);
  tcprepair::RegisterOptions(env, exports);
  tcprepair::RegisterInfo(env, exports);
  tcprepair::RegisterUnix(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(tcp_repair, Init)
