// Unix-socket primitives for talking to the privileged repair helper: connect a SEQPACKET
// socket, send one datagram carrying fds (SCM_RIGHTS), receive one datagram. Blocking, with
// the timeout set at connect: the helper answers in microseconds, and a synchronous round trip
// keeps the callers (checkpoint, restore) synchronous.
#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"

namespace tcprepair {
namespace {

// unixConnect(path, timeoutMs): a CLOEXEC AF_UNIX SOCK_SEQPACKET socket connected to path.
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "path must be a string").ThrowAsJavaScriptException();
    return {};
  }
  int64_t timeoutMs;
  if (!ArgInt(info, 1, "timeoutMs", 1, 3600000, &timeoutMs)) return {};
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    Napi::RangeError::New(env, "socket path is empty or too long").ThrowAsJavaScriptException();
    return {};
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket(AF_UNIX)");
    return {};
  }
  timeval tv{static_cast<time_t>(timeoutMs / 1000), static_cast<suseconds_t>((timeoutMs % 1000) * 1000)};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "connect(AF_UNIX)");
    return {};
  }
  return Napi::Number::New(env, fd);
}

// sendWithFds(sock, bytes, fds): one datagram carrying the fds (0 to 4) as SCM_RIGHTS.
Napi::Value SendWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  if (!ArgFd(info, 0, &sock)) return {};
  if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsArray()) {
    Napi::TypeError::New(env, "sendWithFds(sock, bytes: Uint8Array, fds: number[])").ThrowAsJavaScriptException();
    return {};
  }
  Napi::Array list = info[2].As<Napi::Array>();
  if (list.Length() > 4) {
    Napi::RangeError::New(env, "at most 4 fds").ThrowAsJavaScriptException();
    return {};
  }
  int fds[4];
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list[i];
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (d < 0 || d > INT32_MAX || d != static_cast<double>(static_cast<int>(d))) {
      Napi::RangeError::New(env, "fds must be integers from 0 to 2147483647").ThrowAsJavaScriptException();
      return {};
    }
    fds[i] = static_cast<int>(d);
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  iovec iov{bytes.Data(), bytes.ByteLength()};
  char control[CMSG_SPACE(sizeof(fds))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (list.Length() > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * list.Length());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * list.Length());
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * list.Length());
  }
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, "sendmsg(SCM_RIGHTS)", sock);
  return env.Undefined();
}

// recvMessage(sock, maxBytes): one datagram (EAGAIN when the timeout passed).
Napi::Value RecvMessage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  int64_t max;
  if (!ArgFd(info, 0, &sock) || !ArgInt(info, 1, "maxBytes", 1, 65536, &max)) return {};
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(max));
  ssize_t n;
  do n = recv(sock, out.Data(), static_cast<size_t>(max), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ThrowErrno(env, errno, "recv(AF_UNIX)", sock);
    return {};
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.Data(), static_cast<size_t>(n));
}

}  // namespace

void RegisterUnix(Napi::Env env, Napi::Object exports) {
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("sendWithFds", Napi::Function::New(env, SendWithFds, "sendWithFds"));
  exports.Set("recvMessage", Napi::Function::New(env, RecvMessage, "recvMessage"));
}

}  // namespace tcprepair
