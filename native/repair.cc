// TCP_REPAIR and the options that only mean something in repair mode. Each export is one
// setsockopt/getsockopt; the order in which they must be called lives in src/checkpoint.ts and src/restore.ts.
#include <cerrno>
#include <string>
#include <vector>
#include <sys/socket.h>
#include <netinet/in.h>
#include "tcp.h"

#include "errors.h"
#include "exports.h"

namespace tcprepair {
namespace {

// TCP option kinds the kernel accepts in TCP_REPAIR_OPTIONS (tcp_repair_options_est()).
constexpr uint32_t kOptMss = 2;        // TCPOPT_MSS
constexpr uint32_t kOptWindow = 3;     // TCPOPT_WINDOW: snd_wscale | rcv_wscale << 16
constexpr uint32_t kOptSackPerm = 4;   // TCPOPT_SACK_PERM
constexpr uint32_t kOptTimestamp = 8;  // TCPOPT_TIMESTAMP

// The 20-byte layout every kernel since 4.8 accepts; the kernel compares the length exactly,
// so this stays the legacy struct even if linux/tcp.h grows.
struct RepairWindow {
  uint32_t snd_wl1;
  uint32_t snd_wnd;
  uint32_t max_window;
  uint32_t rcv_wnd;
  uint32_t rcv_wup;
};
static_assert(sizeof(RepairWindow) == 20, "legacy tcp_repair_window is 20 bytes");

bool SetInt(const Napi::CallbackInfo& info, int fd, int opt, int value, const char* syscall) {
  if (setsockopt(fd, SOL_TCP, opt, &value, sizeof(value)) != 0) {
    ThrowErrno(info.Env(), errno, syscall, fd);
    return false;
  }
  return true;
}

// setRepair(fd, mode): 1 on, 0 off (sends a window probe), -1 off without a window probe (~4.18+).
Napi::Value SetRepair(const Napi::CallbackInfo& info) {
  int fd;
  int64_t mode;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, "mode", -1, 1, &mode)) return {};
  const char* syscall = mode == -1 ? "setsockopt(TCP_REPAIR_OFF_NO_WP)" : "setsockopt(TCP_REPAIR)";
  SetInt(info, fd, TCP_REPAIR, static_cast<int>(mode), syscall);
  return info.Env().Undefined();
}

Napi::Value GetRepair(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_TCP, TCP_REPAIR, &value, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_REPAIR)", fd);
    return {};
  }
  return Napi::Number::New(info.Env(), value);
}

// setRepairQueue(fd, queue): 0 none, 1 receive, 2 send (TCP_NO_QUEUE / TCP_RECV_QUEUE / TCP_SEND_QUEUE).
Napi::Value SetRepairQueue(const Napi::CallbackInfo& info) {
  int fd;
  int64_t queue;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, "queue", 0, 2, &queue)) return {};
  SetInt(info, fd, TCP_REPAIR_QUEUE, static_cast<int>(queue), "setsockopt(TCP_REPAIR_QUEUE)");
  return info.Env().Undefined();
}

// Sequence number of the selected queue: rcv_nxt for receive, write_seq for send.
Napi::Value GetQueueSeq(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  uint32_t seq = 0;
  socklen_t len = sizeof(seq);
  if (getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_QUEUE_SEQ)", fd);
    return {};
  }
  return Napi::Number::New(info.Env(), seq);
}

// Only allowed while the socket is closed (before the repair-mode connect): EPERM after.
Napi::Value SetQueueSeq(const Napi::CallbackInfo& info) {
  int fd;
  uint32_t seq;
  if (!ArgFd(info, 0, &fd) || !ArgUint32(info, 1, "seq", &seq)) return {};
  if (setsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, sizeof(seq)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_QUEUE_SEQ)", fd);
  return info.Env().Undefined();
}

uint32_t OptionalUint(const Napi::Object& o, const char* key, bool* present, bool* bad) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    *present = false;
    return 0;
  }
  if (!v.IsNumber()) {
    *bad = true;
    return 0;
  }
  *present = true;
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > UINT32_MAX || d != static_cast<double>(static_cast<uint32_t>(d))) *bad = true;
  return static_cast<uint32_t>(d);
}

// setRepairOptions(fd, { mss?, sndWscale?, rcvWscale?, sackPermitted?, timestamps? }).
// The kernel only accepts it on an established repair socket, before any queue data was sent.
Napi::Value SetRepairOptions(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  if (info.Length() < 2 || !info[1].IsObject()) {
    Napi::TypeError::New(info.Env(), "options must be an object").ThrowAsJavaScriptException();
    return {};
  }
  Napi::Object o = info[1].As<Napi::Object>();
  bool bad = false, has_mss = false, has_snd = false, has_rcv = false;
  uint32_t mss = OptionalUint(o, "mss", &has_mss, &bad);
  uint32_t snd = OptionalUint(o, "sndWscale", &has_snd, &bad);
  uint32_t rcv = OptionalUint(o, "rcvWscale", &has_rcv, &bad);
  if (bad || has_snd != has_rcv || snd > 14 || rcv > 14 || mss > 65535) {
    Napi::TypeError::New(info.Env(),
                         "mss must be 0..65535; sndWscale and rcvWscale must be given together, each 0..14")
        .ThrowAsJavaScriptException();
    return {};
  }
  std::vector<tcp_repair_opt> opts;
  if (has_mss) opts.push_back({kOptMss, mss});
  if (has_snd) opts.push_back({kOptWindow, snd | (rcv << 16)});
  if (o.Get("sackPermitted").ToBoolean().Value()) opts.push_back({kOptSackPerm, 0});
  if (o.Get("timestamps").ToBoolean().Value()) opts.push_back({kOptTimestamp, 0});
  if (!opts.empty() &&
      setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, opts.data(), opts.size() * sizeof(tcp_repair_opt)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_REPAIR_OPTIONS)", fd);
  return info.Env().Undefined();
}

Napi::Value GetRepairWindow(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  RepairWindow w{};
  socklen_t len = sizeof(w);
  if (getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_REPAIR_WINDOW)", fd);
    return {};
  }
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("sndWl1", Napi::Number::New(env, w.snd_wl1));
  out.Set("sndWnd", Napi::Number::New(env, w.snd_wnd));
  out.Set("maxWindow", Napi::Number::New(env, w.max_window));
  out.Set("rcvWnd", Napi::Number::New(env, w.rcv_wnd));
  out.Set("rcvWup", Napi::Number::New(env, w.rcv_wup));
  return out;
}

// The kernel checks: rcv_wup <= rcv_nxt, snd_wl1 within rcv_nxt + rcv_wnd, max_window >= snd_wnd.
Napi::Value SetRepairWindow(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  if (info.Length() < 2 || !info[1].IsObject()) {
    Napi::TypeError::New(info.Env(), "window must be an object").ThrowAsJavaScriptException();
    return {};
  }
  Napi::Object o = info[1].As<Napi::Object>();
  bool bad = false, present = true, all = true;
  RepairWindow w{};
  w.snd_wl1 = OptionalUint(o, "sndWl1", &present, &bad), all = all && present;
  w.snd_wnd = OptionalUint(o, "sndWnd", &present, &bad), all = all && present;
  w.max_window = OptionalUint(o, "maxWindow", &present, &bad), all = all && present;
  w.rcv_wnd = OptionalUint(o, "rcvWnd", &present, &bad), all = all && present;
  w.rcv_wup = OptionalUint(o, "rcvWup", &present, &bad), all = all && present;
  if (bad || !all) {
    Napi::TypeError::New(info.Env(), "window needs sndWl1, sndWnd, maxWindow, rcvWnd, rcvWup as uint32")
        .ThrowAsJavaScriptException();
    return {};
  }
  if (setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_REPAIR_WINDOW)", fd);
  return info.Env().Undefined();
}

// TCP_TIMESTAMP reads the socket's timestamp clock; setting it (repair mode) sets the offset.
Napi::Value GetTimestamp(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  uint32_t ts = 0;
  socklen_t len = sizeof(ts);
  if (getsockopt(fd, SOL_TCP, TCP_TIMESTAMP, &ts, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_TIMESTAMP)", fd);
    return {};
  }
  return Napi::Number::New(info.Env(), ts);
}

Napi::Value SetTimestamp(const Napi::CallbackInfo& info) {
  int fd;
  uint32_t ts;
  if (!ArgFd(info, 0, &fd) || !ArgUint32(info, 1, "timestamp", &ts)) return {};
  if (setsockopt(fd, SOL_TCP, TCP_TIMESTAMP, &ts, sizeof(ts)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_TIMESTAMP)", fd);
  return info.Env().Undefined();
}

// Typed-array forms of the window and options calls, for the checkpoint and restore hot paths:
// the same single getsockopt/setsockopt, without building or reading a JavaScript object.

bool ArgWindowWords(const Napi::CallbackInfo& info, uint32_t** words) {
  size_t length;
  if (!ArgTypedArray(info, 1, napi_uint32_array, "window", reinterpret_cast<void**>(words), &length)) return false;
  if (length < 5) {
    Napi::TypeError::New(info.Env(), "window must hold 5 words").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// getRepairWindowInto(fd, out: Uint32Array[5]) -> snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup
Napi::Value GetRepairWindowInto(const Napi::CallbackInfo& info) {
  int fd;
  uint32_t* out;
  if (!ArgFd(info, 0, &fd) || !ArgWindowWords(info, &out)) return {};
  RepairWindow w{};
  socklen_t len = sizeof(w);
  if (getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_REPAIR_WINDOW)", fd);
    return {};
  }
  out[0] = w.snd_wl1;
  out[1] = w.snd_wnd;
  out[2] = w.max_window;
  out[3] = w.rcv_wnd;
  out[4] = w.rcv_wup;
  return info.Env().Undefined();
}

// setRepairWindowFrom(fd, window: Uint32Array[5]) in the order above.
Napi::Value SetRepairWindowFrom(const Napi::CallbackInfo& info) {
  int fd;
  uint32_t* in;
  if (!ArgFd(info, 0, &fd) || !ArgWindowWords(info, &in)) return {};
  RepairWindow w{in[0], in[1], in[2], in[3], in[4]};
  if (setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_REPAIR_WINDOW)", fd);
  return info.Env().Undefined();
}

// setRepairOptionsRaw(fd, pairs: Uint32Array [code, value, ...], count): the first `count`
// pairs as the kernel's own tcp_repair_opt array (u32 code, u32 value), passed through; the
// kernel checks the codes.
Napi::Value SetRepairOptionsRaw(const Napi::CallbackInfo& info) {
  int fd;
  uint32_t* pairs;
  size_t length;
  int64_t count;
  if (!ArgFd(info, 0, &fd) ||
      !ArgTypedArray(info, 1, napi_uint32_array, "options", reinterpret_cast<void**>(&pairs), &length) ||
      !ArgInt(info, 2, "count", 0, static_cast<int64_t>(length / 2), &count))
    return {};
  static_assert(sizeof(tcp_repair_opt) == 2 * sizeof(uint32_t), "tcp_repair_opt is two u32");
  if (count > 0 && setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, pairs, count * sizeof(tcp_repair_opt)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_REPAIR_OPTIONS)", fd);
  return info.Env().Undefined();
}

}  // namespace

void RegisterRepair(Napi::Env env, Napi::Object exports) {
  exports.Set("setRepair", Napi::Function::New(env, SetRepair, "setRepair"));
  exports.Set("getRepair", Napi::Function::New(env, GetRepair, "getRepair"));
  exports.Set("setRepairQueue", Napi::Function::New(env, SetRepairQueue, "setRepairQueue"));
  exports.Set("getQueueSeq", Napi::Function::New(env, GetQueueSeq, "getQueueSeq"));
  exports.Set("setQueueSeq", Napi::Function::New(env, SetQueueSeq, "setQueueSeq"));
  exports.Set("setRepairOptions", Napi::Function::New(env, SetRepairOptions, "setRepairOptions"));
  exports.Set("getRepairWindow", Napi::Function::New(env, GetRepairWindow, "getRepairWindow"));
  exports.Set("setRepairWindow", Napi::Function::New(env, SetRepairWindow, "setRepairWindow"));
  exports.Set("getRepairWindowInto", Napi::Function::New(env, GetRepairWindowInto, "getRepairWindowInto"));
  exports.Set("setRepairWindowFrom", Napi::Function::New(env, SetRepairWindowFrom, "setRepairWindowFrom"));
  exports.Set("setRepairOptionsRaw", Napi::Function::New(env, SetRepairOptionsRaw, "setRepairOptionsRaw"));
  exports.Set("getTimestamp", Napi::Function::New(env, GetTimestamp, "getTimestamp"));
  exports.Set("setTimestamp", Napi::Function::New(env, SetTimestamp, "setTimestamp"));
}

}  // namespace tcprepair
