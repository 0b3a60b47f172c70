#include "errors.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <netinet/in.h>

namespace tcprepair {

namespace {

std::string ErrnoName(int err) {
  // glibc >= 2.32 knows the symbolic names; fall back to the number for the rest.
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

bool IsTcpSocket(int fd) {
  int protocol = 0;
  socklen_t len = sizeof(protocol);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0) return false;
  return protocol == IPPROTO_TCP;
}

bool Mentions(const char* syscall, const char* word) { return std::strstr(syscall, word) != nullptr; }

// A hint is added only where the bare errno would mislead: the kernel reuses a few codes for
// very different causes in the repair paths.
std::string Hint(int err, const char* syscall, int fd) {
  switch (err) {
    case EPERM:
      if (Mentions(syscall, "TCP_QUEUE_SEQ")) return "the sequence can only be set in repair mode before connect";
      if (std::strcmp(syscall, "setsockopt(TCP_REPAIR)") == 0 || Mentions(syscall, "TCP_REPAIR_OFF_NO_WP"))
        return "needs CAP_NET_ADMIN in the socket's network namespace, and a socket that is not listening";
      if (Mentions(syscall, "REPAIR") || Mentions(syscall, "TCP_QUEUE") || Mentions(syscall, "TCP_TIMESTAMP") ||
          Mentions(syscall, "repair"))
        return "needs CAP_NET_ADMIN in the socket's network namespace, and repair mode on";
      if (Mentions(syscall, "FORCE") || Mentions(syscall, "TRANSPARENT"))
        return "needs CAP_NET_ADMIN in the socket's network namespace";
      if (Mentions(syscall, "recv") || Mentions(syscall, "send")) return "queue access needs repair mode with a queue selected";
      return "";
    case EBADF:
      return "not an open file descriptor";
    case ENOTSOCK:
      return "the file descriptor is not a socket";
    case ENOTTY:
      if (Mentions(syscall, "ioctl")) return "the file descriptor is not a socket";
      return "";
    case ENOPROTOOPT:
    case EOPNOTSUPP:
      if (fd >= 0 && !IsTcpSocket(fd)) return "the file descriptor is not a TCP socket";
      return std::string("this kernel lacks ") + syscall;
    case EINVAL:
      if (fd >= 0 && !IsTcpSocket(fd)) return "the file descriptor is not a TCP socket";
      if (Mentions(syscall, "TCP_REPAIR_OPTIONS")) return "needs repair mode on a connected socket, before any queue data";
      return "";
    case EADDRNOTAVAIL:
      if (Mentions(syscall, "connect")) return "another socket holds the same 4-tuple, or the local address is not usable";
      if (Mentions(syscall, "bind")) return "the address is not on this host: move it here first, or restore with IP_TRANSPARENT";
      return "";
    case EAGAIN:
      // A repair-queue refill is non-blocking: a full send buffer shows up as EAGAIN.
      if (Mentions(syscall, "repair queue")) return "the queue does not fit the socket buffer: force a larger one first";
      return "";
    case ENOBUFS:
      return "the queue does not fit the socket buffer: force a larger one first";
    default:
      return "";
  }
}

}  // namespace

void ThrowErrno(Napi::Env env, int err, const char* syscall, int fd) {
  std::string code = ErrnoName(err);
  std::string message = std::string(syscall) + " " + code;
  std::string hint = Hint(err, syscall, fd);
  if (!hint.empty()) message += " (" + hint + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (fd >= 0) error.Set("fd", Napi::Number::New(env, fd));
  error.ThrowAsJavaScriptException();
}

bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string(name) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double value = info[i].As<Napi::Number>().DoubleValue();
  if (value != static_cast<double>(static_cast<int64_t>(value)) || value < static_cast<double>(min) ||
      value > static_cast<double>(max)) {
    Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer from " + std::to_string(min) +
                                          " to " + std::to_string(max))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(value);
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* out) {
  int64_t value = 0;
  if (!ArgInt(info, i, "fd", 0, INT32_MAX, &value)) return false;
  *out = static_cast<int>(value);
  return true;
}

bool ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t* out) {
  int64_t value = 0;
  if (!ArgInt(info, i, name, 0, UINT32_MAX, &value)) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

bool ArgTypedArray(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* name, void** data,
                   size_t* length) {
  static const char* const kNames[] = {"Int8Array",    "Uint8Array",    "Uint8ClampedArray", "Int16Array",
                                       "Uint16Array",  "Int32Array",    "Uint32Array",       "Float32Array",
                                       "Float64Array", "BigInt64Array", "BigUint64Array"};
  napi_typedarray_type actual;
  napi_value buffer;
  size_t offset;
  if (info.Length() <= i ||
      napi_get_typedarray_info(info.Env(), info[i], &actual, length, data, &buffer, &offset) != napi_ok ||
      actual != type) {
    const char* expected = static_cast<size_t>(type) < sizeof(kNames) / sizeof(kNames[0]) ? kNames[type] : "typed array";
    Napi::TypeError::New(info.Env(), std::string(name) + " must be a " + expected).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace tcprepair
