// Socket lifecycle: create, bind, connect, listen, shutdown, dup, close, names, the drop-all
// freeze filter, and fetching another process's fd (pidfd_getfd) for inspection.
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <mutex>

#include "errors.h"
#include "exports.h"

namespace tcprepair {
namespace {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
};

// Parses `address` for a socket of `family` (4 or 6). An IPv4 text given to an IPv6 socket
// becomes the v4-mapped address (::ffff:a.b.c.d), as dual-stack Node servers see peers.
bool ParseAddress(const Napi::CallbackInfo& info, int family, size_t addrIndex, size_t portIndex, SockAddr* out) {
  if (info.Length() <= addrIndex || !info[addrIndex].IsString()) {
    Napi::TypeError::New(info.Env(), "address must be a string").ThrowAsJavaScriptException();
    return false;
  }
  int64_t port;
  if (!ArgInt(info, portIndex, "port", 0, 65535, &port)) return false;
  std::string text = info[addrIndex].As<Napi::String>().Utf8Value();
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, text.c_str(), &sin->sin_addr) != 1) {
      Napi::TypeError::New(info.Env(), "not an IPv4 address: " + text).ThrowAsJavaScriptException();
      return false;
    }
    out->len = sizeof(sockaddr_in);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  out->len = sizeof(sockaddr_in6);
  if (inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr) == 1) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sin6->sin6_addr.s6_addr[12], &v4, 4);
    return true;
  }
  Napi::TypeError::New(info.Env(), "not an IP address: " + text).ThrowAsJavaScriptException();
  return false;
}

bool ArgFamily(const Napi::CallbackInfo& info, size_t i, int* family) {
  int64_t value;
  if (!ArgInt(info, i, "family", 4, 6, &value) || value == 5) {
    if (!info.Env().IsExceptionPending())
      Napi::TypeError::New(info.Env(), "family must be 4 or 6").ThrowAsJavaScriptException();
    return false;
  }
  *family = static_cast<int>(value);
  return true;
}

// The address of `ss` as text (into `text`) and its port; "" and 0 for a family other than
// IPv4 and IPv6.
void AddressText(const sockaddr_storage& ss, char (&text)[INET6_ADDRSTRLEN], int* port) {
  text[0] = '\0';
  *port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    *port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
    *port = ntohs(sin6->sin6_port);
  }
}

Napi::Object AddressObject(Napi::Env env, const sockaddr_storage& ss) {
  Napi::Object out = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN];
  int port;
  AddressText(ss, text, &port);
  const bool v4 = ss.ss_family == AF_INET, v6 = ss.ss_family == AF_INET6;
  out.Set("family", Napi::String::New(env, v4 ? "IPv4" : v6 ? "IPv6" : "unknown"));
  out.Set("port", Napi::Number::New(env, port));
  if (v6) out.Set("scopeId", Napi::Number::New(env, reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_scope_id));
  out.Set("address", Napi::String::New(env, text));
  return out;
}

// createSocket(family): a blocking-agnostic TCP socket with CLOEXEC; libuv makes it
// non-blocking when a net.Socket adopts it.
Napi::Value CreateSocket(const Napi::CallbackInfo& info) {
  int family;
  if (!ArgFamily(info, 0, &family)) return {};
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    ThrowErrno(info.Env(), errno, "socket");
    return {};
  }
  return Napi::Number::New(info.Env(), fd);
}

// bind(fd, family, address, port)
Napi::Value Bind(const Napi::CallbackInfo& info) {
  int fd, family;
  SockAddr addr;
  if (!ArgFd(info, 0, &fd) || !ArgFamily(info, 1, &family) || !ParseAddress(info, family, 2, 3, &addr)) return {};
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr.storage), addr.len) != 0)
    ThrowErrno(info.Env(), errno, "bind", fd);
  return info.Env().Undefined();
}

// connect(fd, family, address, port): in repair mode this sends no SYN and leaves the socket
// ESTABLISHED at once with the sequence numbers set by TCP_QUEUE_SEQ.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  int fd, family;
  SockAddr addr;
  if (!ArgFd(info, 0, &fd) || !ArgFamily(info, 1, &family) || !ParseAddress(info, family, 2, 3, &addr)) return {};
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr.storage), addr.len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) ThrowErrno(info.Env(), errno, "connect", fd);
  return info.Env().Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int fd;
  int64_t backlog;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, "backlog", 0, 65535, &backlog)) return {};
  if (listen(fd, static_cast<int>(backlog)) != 0) ThrowErrno(info.Env(), errno, "listen", fd);
  return info.Env().Undefined();
}

// shutdown(fd, how): 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR.
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd;
  int64_t how;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, "how", 0, 2, &how)) return {};
  if (shutdown(fd, static_cast<int>(how)) != 0) ThrowErrno(info.Env(), errno, "shutdown", fd);
  return info.Env().Undefined();
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    ThrowErrno(info.Env(), errno, "fcntl(F_DUPFD_CLOEXEC)", fd);
    return {};
  }
  return Napi::Number::New(info.Env(), copy);
}

// close(fd). Closing a socket in repair mode sends neither FIN nor RST. EINTR is not retried:
// on Linux the fd is released anyway, and retrying could close an fd another thread just got.
Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  if (close(fd) != 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close", fd);
  return info.Env().Undefined();
}

// getsockname/getpeername(fd), one path for both forms: an object { family, address, port
// [, scopeId] }, or the hot-path form (asText): the address as text, the port written to out[0]
// (no object to build).
Napi::Value Name(const Napi::CallbackInfo& info, bool peer, bool asText) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  int32_t* port = nullptr;
  if (asText) {
    size_t length;
    if (!ArgTypedArray(info, 1, napi_int32_array, "port", reinterpret_cast<void**>(&port), &length)) return {};
    if (length < 1) {
      Napi::TypeError::New(info.Env(), "port must hold 1 slot").ThrowAsJavaScriptException();
      return {};
    }
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) {
    ThrowErrno(info.Env(), errno, peer ? "getpeername" : "getsockname", fd);
    return {};
  }
  if (!asText) return AddressObject(info.Env(), ss);
  char text[INET6_ADDRSTRLEN];
  int portNumber;
  AddressText(ss, text, &portNumber);
  port[0] = portNumber;
  return Napi::String::New(info.Env(), text);
}
Napi::Value GetSockName(const Napi::CallbackInfo& info) { return Name(info, false, false); }
Napi::Value GetPeerName(const Napi::CallbackInfo& info) { return Name(info, true, false); }
Napi::Value GetSockNameText(const Napi::CallbackInfo& info) { return Name(info, false, true); }
Napi::Value GetPeerNameText(const Napi::CallbackInfo& info) { return Name(info, true, true); }

// socketKind(fd) -> { domain, type, protocol }: lets callers refuse non-TCP fds clearly.
Napi::Value SocketKind(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const struct { int opt; const char* key; const char* syscall; } opts[] = {
      {SO_DOMAIN, "domain", "getsockopt(SO_DOMAIN)"},
      {SO_TYPE, "type", "getsockopt(SO_TYPE)"},
      {SO_PROTOCOL, "protocol", "getsockopt(SO_PROTOCOL)"},
  };
  for (const auto& o : opts) {
    int value = 0;
    socklen_t len = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, o.opt, &value, &len) != 0) {
      ThrowErrno(env, errno, o.syscall, fd);
      return {};
    }
    out.Set(o.key, Napi::Number::New(env, value));
  }
  return out;
}

// The drop-all program as eBPF ("r0 = 0; exit"), loaded once per process and shared by every
// socket it is attached to. A classic filter is compiled (JIT) and freed per socket: measured
// on 6.18 that is ~8 µs per attach against ~0.7 µs for attaching a loaded program by fd. Loading
// needs CAP_BPF or CAP_SYS_ADMIN (or unprivileged BPF); without it, -1 and the classic filter.
// Loaded when the addon loads (RegisterSockets), so the descriptor it keeps open is there from
// the start, not an fd that appears with the first checkpoint.
int SharedDropProgram() {
  static std::once_flag once;
  static int program = -1;
  std::call_once(once, [] {
    bpf_insn insns[2] = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0: keep no byte of the packet
    insns[1].code = BPF_JMP | BPF_EXIT;
    static const char license[] = "GPL";
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = reinterpret_cast<uint64_t>(insns);
    attr.insn_cnt = 2;
    attr.license = reinterpret_cast<uint64_t>(license);
    program = static_cast<int>(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));  // fd is CLOEXEC
  });
  return program;
}

// attachDropFilter(fd): a filter that returns 0 drops every incoming segment before TCP sees
// it, so the socket's state cannot move while it is read (freeze lock). One setsockopt: the
// shared eBPF program when it could be loaded, else the one-instruction classic program.
Napi::Value AttachDropFilter(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  int program = SharedDropProgram();
  if (program >= 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &program, sizeof(program)) != 0)
      ThrowErrno(info.Env(), errno, "setsockopt(SO_ATTACH_BPF)", fd);
    return info.Env().Undefined();
  }
  sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog classic{1, drop_all};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &classic, sizeof(classic)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(SO_ATTACH_FILTER)", fd);
  return info.Env().Undefined();
}

// detachFilter(fd): the kernel wants an int-sized optval here (length 0 gives EINVAL).
Napi::Value DetachFilter(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return {};
  int unused = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused)) != 0)
    ThrowErrno(info.Env(), errno, "setsockopt(SO_DETACH_FILTER)", fd);
  return info.Env().Undefined();
}

// waitForFilterGracePeriod(): membarrier(MEMBARRIER_CMD_GLOBAL) returns after an RCU grace
// period (synchronize_rcu). A segment is filtered and then processed inside one RCU read-side
// section (ip_local_deliver_finish -> tcp_v4_rcv / tcp_v6_rcv): once the call returns, no CPU
// is still handling a segment that passed a socket's filter before the drop filter went on.
// EINVAL on nohz_full kernels, ENOSYS without CONFIG_MEMBARRIER: the caller falls back.
Napi::Value WaitForFilterGracePeriod(const Napi::CallbackInfo& info) {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0)
    ThrowErrno(info.Env(), errno, "membarrier(MEMBARRIER_CMD_GLOBAL)");
  return info.Env().Undefined();
}

// pidfdGetFd(pid, fd): a CLOEXEC copy of another process's fd (needs PTRACE_MODE_ATTACH rights).
Napi::Value PidfdGetFd(const Napi::CallbackInfo& info) {
  int64_t pid, target;
  if (!ArgInt(info, 0, "pid", 1, INT32_MAX, &pid) || !ArgInt(info, 1, "fd", 0, INT32_MAX, &target)) return {};
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (pidfd < 0) {
    ThrowErrno(info.Env(), errno, "pidfd_open");
    return {};
  }
  int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, static_cast<int>(target), 0));
  int err = errno;
  close(pidfd);
  if (copy < 0) {
    ThrowErrno(info.Env(), err, "pidfd_getfd");
    return {};
  }
  return Napi::Number::New(info.Env(), copy);
}

}  // namespace

void RegisterSockets(Napi::Env env, Napi::Object exports) {
  SharedDropProgram();
  exports.Set("createSocket", Napi::Function::New(env, CreateSocket, "createSocket"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("getSockName", Napi::Function::New(env, GetSockName, "getSockName"));
  exports.Set("getPeerName", Napi::Function::New(env, GetPeerName, "getPeerName"));
  exports.Set("getSockNameText", Napi::Function::New(env, GetSockNameText, "getSockNameText"));
  exports.Set("getPeerNameText", Napi::Function::New(env, GetPeerNameText, "getPeerNameText"));
  exports.Set("socketKind", Napi::Function::New(env, SocketKind, "socketKind"));
  exports.Set("attachDropFilter", Napi::Function::New(env, AttachDropFilter, "attachDropFilter"));
  exports.Set("detachFilter", Napi::Function::New(env, DetachFilter, "detachFilter"));
  exports.Set("waitForFilterGracePeriod", Napi::Function::New(env, WaitForFilterGracePeriod, "waitForFilterGracePeriod"));
  exports.Set("pidfdGetFd", Napi::Function::New(env, PidfdGetFd, "pidfdGetFd"));
}

}  // namespace tcprepair
