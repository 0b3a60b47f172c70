// Each native module registers its functions on the addon's exports object.
#pragma once
#include <napi.h>

namespace tcprepair {
void RegisterRepair(Napi::Env env, Napi::Object exports);
void RegisterQueues(Napi::Env env, Napi::Object exports);
void RegisterSockets(Napi::Env env, Napi::Object exports);
void RegisterOptions(Napi::Env env, Napi::Object exports);
void RegisterInfo(Napi::Env env, Napi::Object exports);
void RegisterUnix(Napi::Env env, Napi::Object exports);
}  // namespace tcprepair
