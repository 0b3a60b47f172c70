// TCP_INFO, decoded into plain numbers. Only the fields the running kernel filled are returned
// (the struct grows with kernel versions; the returned length says how much is valid).
#include <cerrno>
#include <cstddef>
#include <sys/socket.h>
#include <netinet/in.h>
#include "tcp.h"

#include "errors.h"
#include "exports.h"

namespace tcprepair {
namespace {

// Option bits of tcpi_options (include/uapi/linux/tcp.h).
constexpr int kInfoTimestamps = 1, kInfoSack = 2, kInfoWscale = 4, kInfoEcn = 8;

Napi::Value GetTcpInfo(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  tcp_info ti{};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_INFO)", fd);
    return {};
  }
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto has = [len](size_t offset, size_t size) { return offset + size <= len; };
#define U32(key, field) \
  if (has(offsetof(tcp_info, field), sizeof(ti.field))) o.Set(key, Napi::Number::New(env, ti.field));
#define U64(key, field) \
  if (has(offsetof(tcp_info, field), sizeof(ti.field))) o.Set(key, Napi::Number::New(env, static_cast<double>(ti.field)));
  o.Set("state", Napi::Number::New(env, ti.tcpi_state));
  o.Set("caState", Napi::Number::New(env, ti.tcpi_ca_state));
  o.Set("retransmits", Napi::Number::New(env, ti.tcpi_retransmits));
  o.Set("probes", Napi::Number::New(env, ti.tcpi_probes));
  o.Set("backoff", Napi::Number::New(env, ti.tcpi_backoff));
  o.Set("options", Napi::Number::New(env, ti.tcpi_options));
  o.Set("timestamps", Napi::Boolean::New(env, (ti.tcpi_options & kInfoTimestamps) != 0));
  o.Set("sack", Napi::Boolean::New(env, (ti.tcpi_options & kInfoSack) != 0));
  o.Set("windowScaling", Napi::Boolean::New(env, (ti.tcpi_options & kInfoWscale) != 0));
  o.Set("ecn", Napi::Boolean::New(env, (ti.tcpi_options & kInfoEcn) != 0));
  o.Set("sndWscale", Napi::Number::New(env, ti.tcpi_snd_wscale));
  o.Set("rcvWscale", Napi::Number::New(env, ti.tcpi_rcv_wscale));
  U32("rto", tcpi_rto) U32("ato", tcpi_ato) U32("sndMss", tcpi_snd_mss) U32("rcvMss", tcpi_rcv_mss)
  U32("unacked", tcpi_unacked) U32("sacked", tcpi_sacked) U32("lost", tcpi_lost) U32("retrans", tcpi_retrans)
  U32("lastDataSent", tcpi_last_data_sent) U32("lastAckSent", tcpi_last_ack_sent)
  U32("lastDataRecv", tcpi_last_data_recv) U32("lastAckRecv", tcpi_last_ack_recv)
  U32("pmtu", tcpi_pmtu) U32("rcvSsthresh", tcpi_rcv_ssthresh) U32("rtt", tcpi_rtt) U32("rttvar", tcpi_rttvar)
  U32("sndSsthresh", tcpi_snd_ssthresh) U32("sndCwnd", tcpi_snd_cwnd) U32("advmss", tcpi_advmss)
  U32("reordering", tcpi_reordering) U32("rcvRtt", tcpi_rcv_rtt) U32("rcvSpace", tcpi_rcv_space)
  U32("totalRetrans", tcpi_total_retrans) U64("pacingRate", tcpi_pacing_rate)
  U64("bytesAcked", tcpi_bytes_acked) U64("bytesReceived", tcpi_bytes_received)
  U32("segsOut", tcpi_segs_out) U32("segsIn", tcpi_segs_in) U32("notsentBytes", tcpi_notsent_bytes)
  U32("minRtt", tcpi_min_rtt) U32("dataSegsIn", tcpi_data_segs_in) U32("dataSegsOut", tcpi_data_segs_out)
  U64("deliveryRate", tcpi_delivery_rate) U64("bytesSent", tcpi_bytes_sent)
  U64("bytesRetrans", tcpi_bytes_retrans) U32("dsackDups", tcpi_dsack_dups) U32("reordSeen", tcpi_reord_seen)
  U32("rcvOooPack", tcpi_rcv_ooopack) U32("sndWnd", tcpi_snd_wnd)
#undef U32
#undef U64
  return o;
}

// getTcpInfoBytes(fd, out: Uint8Array) -> bytes filled: the raw struct for hot paths that need
// three fields and cannot afford fifty object properties (TypeScript reads the offsets).
Napi::Value GetTcpInfoBytes(const Napi::CallbackInfo& info) {
  int fd;
  void* out;
  size_t length;
  if (!ArgFd(info, 0, &fd) || !ArgTypedArray(info, 1, napi_uint8_array, "out", &out, &length)) return {};
  socklen_t len = static_cast<socklen_t>(length);
  if (getsockopt(fd, SOL_TCP, TCP_INFO, out, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_INFO)", fd);
    return {};
  }
  return Napi::Number::New(info.Env(), len);
}

}  // namespace

void RegisterInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("getTcpInfo", Napi::Function::New(env, GetTcpInfo, "getTcpInfo"));
  exports.Set("getTcpInfoBytes", Napi::Function::New(env, GetTcpInfoBytes, "getTcpInfoBytes"));
}

}  // namespace tcprepair
