// Queue sizes, and peek / refill of the repair queues.
#include <cerrno>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include "tcp.h"

#include "errors.h"
#include "exports.h"

namespace tcprepair {
namespace {

Napi::Value IoctlInt(const Napi::CallbackInfo& info, unsigned long request, const char* syscall) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  int value = 0;
  if (ioctl(fd, request, &value) != 0) {
    ThrowErrno(info.Env(), errno, syscall, fd);
    return {};
  }
  return Napi::Number::New(info.Env(), value);
}

// Bytes in the receive queue not yet read.
Napi::Value GetInq(const Napi::CallbackInfo& info) { return IoctlInt(info, SIOCINQ, "ioctl(SIOCINQ)"); }
// Bytes in the send queue: sent but not acknowledged plus not yet sent.
Napi::Value GetOutq(const Napi::CallbackInfo& info) { return IoctlInt(info, SIOCOUTQ, "ioctl(SIOCOUTQ)"); }
// Bytes in the send queue not yet sent.
Napi::Value GetOutqNotSent(const Napi::CallbackInfo& info) {
  return IoctlInt(info, SIOCOUTQNSD, "ioctl(SIOCOUTQNSD)");
}

// peekQueue(fd, length): in repair mode with a queue selected, MSG_PEEK copies that queue
// (for the send queue too) without consuming it. Returns the bytes actually copied.
Napi::Value PeekQueue(const Napi::CallbackInfo& info) {
  int fd;
  int64_t length;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, "length", 0, 1 << 30, &length)) return {};
  Napi::Env env = info.Env();
  if (length == 0) return Napi::Buffer<uint8_t>::New(env, 0);
  Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(length));
  ssize_t got;
  do {
    got = recv(fd, buffer.Data(), static_cast<size_t>(length), MSG_PEEK | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    ThrowErrno(env, errno, "recv(MSG_PEEK)", fd);
    return {};
  }
  // The send-queue peek (tcp_peek_sndq) returns the whole queue's length even when the buffer
  // is shorter: only `length` bytes were copied, so never trust a larger count.
  if (got > length) got = static_cast<ssize_t>(length);
  if (got == length) return buffer;
  return Napi::Buffer<uint8_t>::Copy(env, buffer.Data(), static_cast<size_t>(got));
}

// getQueueSizes(fd, out: Int32Array[3]) -> SIOCINQ, SIOCOUTQ, SIOCOUTQNSD in one call.
Napi::Value GetQueueSizes(const Napi::CallbackInfo& info) {
  int fd;
  int32_t* out;
  size_t length;
  if (!ArgFd(info, 0, &fd) ||
      !ArgTypedArray(info, 1, napi_int32_array, "out", reinterpret_cast<void**>(&out), &length))
    return {};
  if (length < 3) {
    Napi::TypeError::New(info.Env(), "out must hold 3 slots").ThrowAsJavaScriptException();
    return {};
  }
  const struct { unsigned long request; const char* syscall; } ioctls[] = {
      {SIOCINQ, "ioctl(SIOCINQ)"}, {SIOCOUTQ, "ioctl(SIOCOUTQ)"}, {SIOCOUTQNSD, "ioctl(SIOCOUTQNSD)"}};
  for (size_t i = 0; i < 3; i++) {
    int value = 0;
    if (ioctl(fd, ioctls[i].request, &value) != 0) {
      ThrowErrno(info.Env(), errno, ioctls[i].syscall, fd);
      return {};
    }
    out[i] = value;
  }
  return info.Env().Undefined();
}

// peekQueueInto(fd, into: Uint8Array, offset, length) -> bytes copied: peekQueue into a buffer
// the caller owns (one allocation for both queues of a checkpoint instead of one per queue).
Napi::Value PeekQueueInto(const Napi::CallbackInfo& info) {
  int fd;
  uint8_t* into;
  size_t size;
  int64_t offset, length;
  if (!ArgFd(info, 0, &fd) || !ArgTypedArray(info, 1, napi_uint8_array, "into", reinterpret_cast<void**>(&into), &size) ||
      !ArgInt(info, 2, "offset", 0, static_cast<int64_t>(size), &offset) ||
      !ArgInt(info, 3, "length", 0, static_cast<int64_t>(size) - offset, &length))
    return {};
  if (length == 0) return Napi::Number::New(info.Env(), 0);
  ssize_t got;
  do {
    got = recv(fd, into + offset, static_cast<size_t>(length), MSG_PEEK | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    ThrowErrno(info.Env(), errno, "recv(MSG_PEEK)", fd);
    return {};
  }
  // As in peekQueue: the send-queue peek may report more than it copied.
  if (got > length) got = static_cast<ssize_t>(length);
  return Napi::Number::New(info.Env(), static_cast<double>(got));
}

// readQueuesInto(fd, into: Uint8Array, inq, outq, out: Uint32Array[4]): the frozen checkpoint's
// queue reads in one crossing (each was its own native call): select the receive queue, read
// its TCP_QUEUE_SEQ, peek `inq` bytes to into[0..inq), the same for the send queue into
// into[inq..inq+outq), then select no queue. out = recv seq, send seq, recv bytes copied,
// send bytes copied. The same kernel calls, in the same order, as the separate functions.
Napi::Value ReadQueuesInto(const Napi::CallbackInfo& info) {
  int fd;
  uint8_t* into;
  size_t size;
  int64_t inq, outq;
  uint32_t* out;
  size_t outLength;
  if (!ArgFd(info, 0, &fd) || !ArgTypedArray(info, 1, napi_uint8_array, "into", reinterpret_cast<void**>(&into), &size) ||
      !ArgInt(info, 2, "inq", 0, static_cast<int64_t>(size), &inq) ||
      !ArgInt(info, 3, "outq", 0, static_cast<int64_t>(size) - inq, &outq) ||
      !ArgTypedArray(info, 4, napi_uint32_array, "out", reinterpret_cast<void**>(&out), &outLength))
    return {};
  if (outLength < 4) {
    Napi::TypeError::New(info.Env(), "out must hold 4 slots").ThrowAsJavaScriptException();
    return {};
  }
  const struct { int queue; int64_t offset; int64_t length; } queues[] = {{TCP_RECV_QUEUE, 0, inq}, {TCP_SEND_QUEUE, inq, outq}};
  for (int i = 0; i < 2; i++) {
    int q = queues[i].queue;
    const char* failed = nullptr;
    int err = 0;
    uint32_t seq = 0;
    socklen_t len = sizeof(seq);
    ssize_t got = 0;
    if (setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) != 0) {
      failed = "setsockopt(TCP_REPAIR_QUEUE)";
    } else if (getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, &len) != 0) {
      failed = "getsockopt(TCP_QUEUE_SEQ)";
    } else if (queues[i].length > 0) {
      do {
        got = recv(fd, into + queues[i].offset, static_cast<size_t>(queues[i].length), MSG_PEEK | MSG_DONTWAIT);
      } while (got < 0 && errno == EINTR);
      if (got < 0) failed = "recv(MSG_PEEK)";
      // As in peekQueue: the send-queue peek may report more than it copied.
      else if (got > queues[i].length) got = static_cast<ssize_t>(queues[i].length);
    }
    if (failed != nullptr) {
      err = errno;
      int none = TCP_NO_QUEUE;
      setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &none, sizeof(none));
      ThrowErrno(info.Env(), err, failed, fd);
      return {};
    }
    out[i] = seq;
    out[2 + i] = static_cast<uint32_t>(got);
  }
  int none = TCP_NO_QUEUE;
  if (setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &none, sizeof(none)) != 0) {
    ThrowErrno(info.Env(), errno, "setsockopt(TCP_REPAIR_QUEUE)", fd);
    return {};
  }
  return info.Env().Undefined();
}

// refillQueue(fd, bytes): in repair mode, send() appends to the selected queue without
// transmitting. The kernel allocates one linear skb per call, so a large chunk can fail with
// ENOMEM: halve and retry. A call may also queue less than asked: loop until all is in.
Napi::Value RefillQueue(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    Napi::TypeError::New(info.Env(), "bytes must be a Buffer or Uint8Array").ThrowAsJavaScriptException();
    return {};
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  const uint8_t* data = bytes.Data();
  size_t remaining = bytes.ByteLength();
  size_t chunk = remaining;
  size_t written = 0;
  while (remaining > 0) {
    size_t len = chunk < remaining ? chunk : remaining;
    ssize_t sent = send(fd, data + written, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOMEM && chunk > 1) {
        chunk /= 2;
        continue;
      }
      int err = errno;
      ThrowErrno(info.Env(), err, "send(repair queue)", fd);
      Napi::Error pending = info.Env().GetAndClearPendingException();
      pending.Set("bytesWritten", Napi::Number::New(info.Env(), static_cast<double>(written)));
      pending.ThrowAsJavaScriptException();
      return {};
    }
    written += static_cast<size_t>(sent);
    remaining -= static_cast<size_t>(sent);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(written));
}

}  // namespace

void RegisterQueues(Napi::Env env, Napi::Object exports) {
  exports.Set("getInq", Napi::Function::New(env, GetInq, "getInq"));
  exports.Set("getOutq", Napi::Function::New(env, GetOutq, "getOutq"));
  exports.Set("getOutqNotSent", Napi::Function::New(env, GetOutqNotSent, "getOutqNotSent"));
  exports.Set("peekQueue", Napi::Function::New(env, PeekQueue, "peekQueue"));
  exports.Set("getQueueSizes", Napi::Function::New(env, GetQueueSizes, "getQueueSizes"));
  exports.Set("peekQueueInto", Napi::Function::New(env, PeekQueueInto, "peekQueueInto"));
  exports.Set("refillQueue", Napi::Function::New(env, RefillQueue, "refillQueue"));
  exports.Set("readQueuesInto", Napi::Function::New(env, ReadQueuesInto, "readQueuesInto"));
}

}  // namespace tcprepair
