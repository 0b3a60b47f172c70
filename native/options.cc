// Integer socket options (a named allow-list, so error messages name the option), the
// congestion-control name, and the constants the TypeScript side uses.
#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <netinet/in.h>
#include "tcp.h"
#include <linux/sockios.h>

#include "errors.h"
#include "exports.h"

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IP_FREEBIND
#define IP_FREEBIND 15
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

namespace tcprepair {
namespace {

struct IntOption {
  int level;
  int name;
  const char* get;
  const char* set;
};

#define OPT(level, name) {level, name, "getsockopt(" #name ")", "setsockopt(" #name ")"}
const IntOption kIntOptions[] = {
    OPT(SOL_SOCKET, SO_REUSEADDR),    OPT(SOL_SOCKET, SO_REUSEPORT),   OPT(SOL_SOCKET, SO_KEEPALIVE),
    OPT(SOL_SOCKET, SO_SNDBUF),       OPT(SOL_SOCKET, SO_RCVBUF),      OPT(SOL_SOCKET, SO_SNDBUFFORCE),
    OPT(SOL_SOCKET, SO_RCVBUFFORCE),  OPT(SOL_SOCKET, SO_PRIORITY),    OPT(SOL_SOCKET, SO_MARK),
    OPT(SOL_SOCKET, SO_OOBINLINE),    OPT(SOL_SOCKET, SO_TYPE),        OPT(SOL_SOCKET, SO_PROTOCOL),
    OPT(SOL_SOCKET, SO_DOMAIN),       OPT(SOL_SOCKET, SO_ERROR),       OPT(SOL_SOCKET, SO_RCVLOWAT),
    OPT(IPPROTO_IP, IP_TOS),          OPT(IPPROTO_IP, IP_TTL),         OPT(IPPROTO_IP, IP_FREEBIND),
    OPT(IPPROTO_IP, IP_TRANSPARENT),  OPT(IPPROTO_IPV6, IPV6_TCLASS),  OPT(IPPROTO_IPV6, IPV6_UNICAST_HOPS),
    OPT(IPPROTO_IPV6, IPV6_V6ONLY),   OPT(IPPROTO_IPV6, IPV6_FREEBIND), OPT(IPPROTO_IPV6, IPV6_TRANSPARENT),
    OPT(SOL_TCP, TCP_NODELAY),        OPT(SOL_TCP, TCP_CORK),          OPT(SOL_TCP, TCP_MAXSEG),
    OPT(SOL_TCP, TCP_KEEPIDLE),       OPT(SOL_TCP, TCP_KEEPINTVL),     OPT(SOL_TCP, TCP_KEEPCNT),
    OPT(SOL_TCP, TCP_USER_TIMEOUT),   OPT(SOL_TCP, TCP_NOTSENT_LOWAT), OPT(SOL_TCP, TCP_QUICKACK),
    OPT(SOL_TCP, TCP_WINDOW_CLAMP),   OPT(SOL_TCP, TCP_THIN_LINEAR_TIMEOUTS), OPT(SOL_TCP, TCP_LINGER2),
    OPT(SOL_TCP, TCP_DEFER_ACCEPT),   OPT(SOL_TCP, TCP_SYNCNT),        OPT(SOL_TCP, TCP_REPAIR),
    OPT(SOL_TCP, TCP_REPAIR_QUEUE),   OPT(SOL_TCP, TCP_QUEUE_SEQ),     OPT(SOL_TCP, TCP_TIMESTAMP),
};
#undef OPT

const IntOption* LookupOption(int64_t level, int64_t name) {
  for (const auto& o : kIntOptions)
    if (o.level == level && o.name == name) return &o;
  return nullptr;
}

void ThrowUnsupported(Napi::Env env, int64_t level, int64_t name) {
  Napi::TypeError::New(env, "unsupported socket option level " + std::to_string(level) + " name " + std::to_string(name))
      .ThrowAsJavaScriptException();
}

const IntOption* FindOption(const Napi::CallbackInfo& info, int* fd, int64_t* value, bool withValue) {
  int64_t level, name;
  if (!ArgFd(info, 0, fd) || !ArgInt(info, 1, "level", 0, INT32_MAX, &level) ||
      !ArgInt(info, 2, "name", 0, INT32_MAX, &name))
    return nullptr;
  if (withValue && !ArgInt(info, 3, "value", INT32_MIN, INT32_MAX, value)) return nullptr;
  const IntOption* o = LookupOption(level, name);
  if (o == nullptr) ThrowUnsupported(info.Env(), level, name);
  return o;
}

// getIntOption(fd, level, name)
Napi::Value GetIntOption(const Napi::CallbackInfo& info) {
  int fd;
  int64_t unused;
  const IntOption* o = FindOption(info, &fd, &unused, false);
  if (o == nullptr) return {};
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, o->level, o->name, &value, &len) != 0) {
    ThrowErrno(info.Env(), errno, o->get, fd);
    return {};
  }
  return Napi::Number::New(info.Env(), value);
}

// setIntOption(fd, level, name, value)
Napi::Value SetIntOption(const Napi::CallbackInfo& info) {
  int fd;
  int64_t value;
  const IntOption* o = FindOption(info, &fd, &value, true);
  if (o == nullptr) return {};
  int v = static_cast<int>(value);
  if (setsockopt(fd, o->level, o->name, &v, sizeof(v)) != 0) ThrowErrno(info.Env(), errno, o->set, fd);
  return info.Env().Undefined();
}

// The bulk forms below serve the checkpoint and restore hot paths: one native call runs a list
// of getsockopt (or setsockopt) calls, in the order TypeScript gave, and stops at the first
// failure with the same error a single call would raise. They decide nothing themselves.

// getIntOptions(fd, spec: Int32Array [level, name, level, name, ...], out: Int32Array)
Napi::Value GetIntOptions(const Napi::CallbackInfo& info) {
  int fd;
  int32_t *spec, *out;
  size_t specLength, outLength;
  if (!ArgFd(info, 0, &fd) ||
      !ArgTypedArray(info, 1, napi_int32_array, "spec", reinterpret_cast<void**>(&spec), &specLength) ||
      !ArgTypedArray(info, 2, napi_int32_array, "out", reinterpret_cast<void**>(&out), &outLength))
    return {};
  Napi::Env env = info.Env();
  size_t count = specLength / 2;
  if (specLength % 2 != 0 || outLength < count) {
    Napi::TypeError::New(env, "spec must hold (level, name) pairs and out one slot per pair").ThrowAsJavaScriptException();
    return {};
  }
  for (size_t i = 0; i < count; i++) {
    const IntOption* o = LookupOption(spec[2 * i], spec[2 * i + 1]);
    if (o == nullptr) {
      ThrowUnsupported(env, spec[2 * i], spec[2 * i + 1]);
      return {};
    }
    int value = 0;
    socklen_t len = sizeof(value);
    if (getsockopt(fd, o->level, o->name, &value, &len) != 0) {
      ThrowErrno(env, errno, o->get, fd);
      return {};
    }
    out[i] = value;
  }
  return env.Undefined();
}

// setIntOptions(fd, spec: Int32Array [level, name, value, ...], count): the first `count` triples.
Napi::Value SetIntOptions(const Napi::CallbackInfo& info) {
  int fd;
  int32_t* spec;
  size_t specLength;
  int64_t count;
  if (!ArgFd(info, 0, &fd) ||
      !ArgTypedArray(info, 1, napi_int32_array, "spec", reinterpret_cast<void**>(&spec), &specLength) ||
      !ArgInt(info, 2, "count", 0, static_cast<int64_t>(specLength / 3), &count))
    return {};
  Napi::Env env = info.Env();
  for (int64_t i = 0; i < count * 3; i += 3) {
    const IntOption* o = LookupOption(spec[i], spec[i + 1]);
    if (o == nullptr) {
      ThrowUnsupported(env, spec[i], spec[i + 1]);
      return {};
    }
    int value = spec[i + 2];
    if (setsockopt(fd, o->level, o->name, &value, sizeof(value)) != 0) {
      // Leaving repair without a window probe has its own name (and hint) in the single form.
      bool noProbe = o->level == SOL_TCP && o->name == TCP_REPAIR && value == TCP_REPAIR_OFF_NO_WP;
      ThrowErrno(env, errno, noProbe ? "setsockopt(TCP_REPAIR_OFF_NO_WP)" : o->set, fd);
      return {};
    }
  }
  return env.Undefined();
}

Napi::Value GetCongestion(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  char name[TCP_CA_NAME_MAX + 1] = {0};
  socklen_t len = TCP_CA_NAME_MAX;
  if (getsockopt(fd, SOL_TCP, TCP_CONGESTION, name, &len) != 0) {
    ThrowErrno(info.Env(), errno, "getsockopt(TCP_CONGESTION)", fd);
    return {};
  }
  return Napi::String::New(info.Env(), name, strnlen(name, len));
}

Napi::Value SetCongestion(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  if (info.Length() < 2 || !info[1].IsString()) {
    Napi::TypeError::New(info.Env(), "congestion control name must be a string").ThrowAsJavaScriptException();
    return {};
  }
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (setsockopt(fd, SOL_TCP, TCP_CONGESTION, name.data(), name.size()) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_CONGESTION)", fd);
  return info.Env().Undefined();
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  const struct { const char* name; int value; } table[] = {
      {"SOL_SOCKET", SOL_SOCKET},       {"IPPROTO_IP", IPPROTO_IP},         {"IPPROTO_IPV6", IPPROTO_IPV6},
      {"SOL_TCP", SOL_TCP},             {"IPPROTO_TCP", IPPROTO_TCP},       {"AF_INET", AF_INET},
      {"AF_INET6", AF_INET6},           {"SOCK_STREAM", SOCK_STREAM},       {"SO_REUSEADDR", SO_REUSEADDR},
      {"SO_REUSEPORT", SO_REUSEPORT},   {"SO_KEEPALIVE", SO_KEEPALIVE},     {"SO_SNDBUF", SO_SNDBUF},
      {"SO_RCVBUF", SO_RCVBUF},         {"SO_SNDBUFFORCE", SO_SNDBUFFORCE}, {"SO_RCVBUFFORCE", SO_RCVBUFFORCE},
      {"SO_PRIORITY", SO_PRIORITY},     {"SO_MARK", SO_MARK},               {"SO_OOBINLINE", SO_OOBINLINE},
      {"SO_TYPE", SO_TYPE},             {"SO_PROTOCOL", SO_PROTOCOL},       {"SO_DOMAIN", SO_DOMAIN},
      {"SO_ERROR", SO_ERROR},           {"SO_RCVLOWAT", SO_RCVLOWAT},       {"IP_TOS", IP_TOS},
      {"IP_TTL", IP_TTL},               {"IP_FREEBIND", IP_FREEBIND},       {"IP_TRANSPARENT", IP_TRANSPARENT},
      {"IPV6_TCLASS", IPV6_TCLASS},     {"IPV6_UNICAST_HOPS", IPV6_UNICAST_HOPS},
      {"IPV6_V6ONLY", IPV6_V6ONLY},     {"IPV6_FREEBIND", IPV6_FREEBIND},   {"IPV6_TRANSPARENT", IPV6_TRANSPARENT},
      {"TCP_NODELAY", TCP_NODELAY},     {"TCP_CORK", TCP_CORK},             {"TCP_MAXSEG", TCP_MAXSEG},
      {"TCP_KEEPIDLE", TCP_KEEPIDLE},   {"TCP_KEEPINTVL", TCP_KEEPINTVL},   {"TCP_KEEPCNT", TCP_KEEPCNT},
      {"TCP_USER_TIMEOUT", TCP_USER_TIMEOUT}, {"TCP_NOTSENT_LOWAT", TCP_NOTSENT_LOWAT},
      {"TCP_QUICKACK", TCP_QUICKACK},   {"TCP_WINDOW_CLAMP", TCP_WINDOW_CLAMP},
      {"TCP_THIN_LINEAR_TIMEOUTS", TCP_THIN_LINEAR_TIMEOUTS}, {"TCP_LINGER2", TCP_LINGER2},
      {"TCP_DEFER_ACCEPT", TCP_DEFER_ACCEPT}, {"TCP_SYNCNT", TCP_SYNCNT}, {"TCP_REPAIR", TCP_REPAIR},
      {"TCP_REPAIR_QUEUE", TCP_REPAIR_QUEUE}, {"TCP_QUEUE_SEQ", TCP_QUEUE_SEQ},
      {"TCP_REPAIR_OPTIONS", TCP_REPAIR_OPTIONS}, {"TCP_TIMESTAMP", TCP_TIMESTAMP},
      {"TCP_REPAIR_WINDOW", TCP_REPAIR_WINDOW}, {"TCP_CONGESTION", TCP_CONGESTION}, {"TCP_INFO", TCP_INFO},
      {"TCP_REPAIR_ON", TCP_REPAIR_ON},  {"TCP_REPAIR_OFF", TCP_REPAIR_OFF},
      {"TCP_REPAIR_OFF_NO_WP", TCP_REPAIR_OFF_NO_WP},
      {"TCP_NO_QUEUE", TCP_NO_QUEUE},   {"TCP_RECV_QUEUE", TCP_RECV_QUEUE}, {"TCP_SEND_QUEUE", TCP_SEND_QUEUE},
      {"SHUT_RD", SHUT_RD},             {"SHUT_WR", SHUT_WR},               {"SHUT_RDWR", SHUT_RDWR},
  };
  for (const auto& e : table) c.Set(e.name, Napi::Number::New(env, e.value));
  return c;
}

}  // namespace

void RegisterOptions(Napi::Env env, Napi::Object exports) {
  exports.Set("getIntOption", Napi::Function::New(env, GetIntOption, "getIntOption"));
  exports.Set("setIntOption", Napi::Function::New(env, SetIntOption, "setIntOption"));
  exports.Set("getIntOptions", Napi::Function::New(env, GetIntOptions, "getIntOptions"));
  exports.Set("setIntOptions", Napi::Function::New(env, SetIntOptions, "setIntOptions"));
  exports.Set("getCongestion", Napi::Function::New(env, GetCongestion, "getCongestion"));
  exports.Set("setCongestion", Napi::Function::New(env, SetCongestion, "setCongestion"));
  exports.Set("constants", Constants(env));
}

}  // namespace tcprepair
