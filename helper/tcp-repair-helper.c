/*
 * tcp-repair-helper: the only privileged part of a tcp-repair application.
 *
 * It holds CAP_NET_ADMIN (and drops every other capability at start), listens on a Unix
 * socket, and performs a short list of socket operations on TCP sockets that clients pass to it
 * with SCM_RIGHTS. The passed descriptor shares the client's open socket, so a switch made here
 * applies to the client's socket; everything else (sequence numbers, queues, windows, options
 * in repair mode) the unprivileged client then does itself: the kernel checks the capability
 * only when repair mode is switched, not for the operations repair mode allows.
 *
 * What it accepts (anything else is refused with an errno and logged):
 *   - only clients whose uid is allowed (SO_PEERCRED; --allow-uid, default: the helper's uid);
 *   - exactly one descriptor per request, which must be a TCP socket (AF_INET or AF_INET6,
 *     SOCK_STREAM, IPPROTO_TCP) of the helper's own network namespace;
 *   - only these operations: TCP_REPAIR on / off / off without window probe; attach the
 *     drop-all freeze filter (the helper builds it: clients cannot load BPF code) and detach a
 *     filter; SO_SNDBUFFORCE / SO_RCVBUFFORCE up to --max-buffer bytes; IP(V6)_TRANSPARENT
 *     0/1; SO_MARK; SO_PRIORITY 0..--max-priority.
 * It never keeps a descriptor: each is closed as soon as its one operation is done.
 *
 * Protocol (SOCK_SEQPACKET, one datagram each way):
 *   request  = u32 magic "TRH1" | u16 operation | u16 reserved (0) | i32 value, with the fd
 *   response = u32 magic "TRH1" | i32 result (0, or -errno)
 * All integers little-endian (host order on Linux x86/arm).
 *
 * Usage: tcp-repair-helper --socket PATH [--allow-uid UID]... [--mode OCTAL]
 *                          [--max-buffer BYTES] [--max-priority N] [--quiet]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef TCP_REPAIR
#define TCP_REPAIR 19
#endif
#ifndef SO_DETACH_FILTER
#define SO_DETACH_FILTER 27
#endif

#define MAGIC 0x31485254u /* "TRH1" read as a little-endian u32 */
#define MAX_CLIENTS 64
#define MAX_ALLOWED 16

enum operation {
  OP_REPAIR = 1,        /* value: 1 on, 0 off (window probe), -1 off without probe */
  OP_FREEZE_FILTER = 2, /* attach the drop-all classic BPF filter */
  OP_DETACH_FILTER = 3,
  OP_SNDBUFFORCE = 4, /* value: bytes */
  OP_RCVBUFFORCE = 5,
  OP_TRANSPARENT = 6, /* value: 0 or 1; IP_ or IPV6_ by the socket's family */
  OP_MARK = 7,
  OP_PRIORITY = 8,
};

struct request {
  uint32_t magic;
  uint16_t operation;
  uint16_t reserved;
  int32_t value;
};

struct response {
  uint32_t magic;
  int32_t result;
};

static uid_t allowed[MAX_ALLOWED];
static int allowed_count = 0;
static long max_buffer = 256L * 1024 * 1024;
static long max_priority = 6;
static int quiet = 0;
static ino_t own_netns = 0;

static void log_line(const char *format, ...) {
  if (quiet) return;
  va_list args;
  va_start(args, format);
  fprintf(stderr, "tcp-repair-helper: ");
  vfprintf(stderr, format, args);
  fprintf(stderr, "\n");
  va_end(args);
}

static void die(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "tcp-repair-helper: ");
  vfprintf(stderr, format, args);
  fprintf(stderr, "\n");
  va_end(args);
  exit(1);
}

/* Keeps CAP_NET_ADMIN only: effective, permitted; nothing inheritable; no new privileges. */
static void drop_other_capabilities(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  if (syscall(SYS_capget, &header, data) != 0) die("capget: %s", strerror(errno));
  if (!(data[0].effective & (1u << CAP_NET_ADMIN)) && !(data[0].permitted & (1u << CAP_NET_ADMIN)))
    die("this process lacks CAP_NET_ADMIN: start it with that capability (e.g. setpriv --ambient-caps +net_admin, or systemd AmbientCapabilities=CAP_NET_ADMIN)");
  /* The bounding set too, where allowed (needs CAP_SETPCAP; harmless to skip without it). */
  for (int cap = 0; cap <= 63; cap++)
    if (cap != CAP_NET_ADMIN) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  memset(data, 0, sizeof(data));
  data[0].effective = data[0].permitted = 1u << CAP_NET_ADMIN;
  if (syscall(SYS_capset, &header, data) != 0) die("capset: %s", strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs: %s", strerror(errno));
}

static ino_t netns_inode_of_self(void) {
  struct stat st;
  if (stat("/proc/self/ns/net", &st) != 0) die("cannot read /proc/self/ns/net: %s", strerror(errno));
  return st.st_ino;
}

/* 0 when fd is a TCP socket of our network namespace, else the errno to answer. */
static int check_socket(int fd, int *family) {
  int value;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) != 0) return errno == ENOTSOCK ? ENOTSOCK : EBADF;
  if (value != AF_INET && value != AF_INET6) return EAFNOSUPPORT;
  *family = value;
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0 || value != SOCK_STREAM) return EPROTONOSUPPORT;
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &value, &len) != 0 || value != IPPROTO_TCP) return EPROTONOSUPPORT;
  /* A socket of another network namespace: our capability would reach into it. Refuse. */
  int ns = ioctl(fd, SIOCGSKNS);
  if (ns < 0) return EXDEV;
  struct stat st;
  int same = fstat(ns, &st) == 0 && st.st_ino == own_netns;
  close(ns);
  return same ? 0 : EXDEV;
}

static int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

static int perform(int fd, const struct request *r) {
  int family = 0;
  int bad = check_socket(fd, &family);
  if (bad) return bad;
  switch (r->operation) {
    case OP_REPAIR:
      if (r->value != 1 && r->value != 0 && r->value != -1) return EINVAL;
      return set_int(fd, IPPROTO_TCP, TCP_REPAIR, r->value);
    case OP_FREEZE_FILTER: {
      if (r->value != 0) return EINVAL;
      struct sock_filter drop_all = BPF_STMT(BPF_RET | BPF_K, 0);
      struct sock_fprog program = {1, &drop_all};
      return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) == 0 ? 0 : errno;
    }
    case OP_DETACH_FILTER:
      if (r->value != 0) return EINVAL;
      return set_int(fd, SOL_SOCKET, SO_DETACH_FILTER, 0);
    case OP_SNDBUFFORCE:
    case OP_RCVBUFFORCE:
      if (r->value < 0 || r->value > max_buffer) return ERANGE;
      return set_int(fd, SOL_SOCKET, r->operation == OP_SNDBUFFORCE ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, r->value);
    case OP_TRANSPARENT:
      if (r->value != 0 && r->value != 1) return EINVAL;
      return family == AF_INET ? set_int(fd, IPPROTO_IP, IP_TRANSPARENT, r->value)
                               : set_int(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, r->value);
    case OP_MARK:
      return set_int(fd, SOL_SOCKET, SO_MARK, r->value);
    case OP_PRIORITY:
      if (r->value < 0 || r->value > max_priority) return ERANGE;
      return set_int(fd, SOL_SOCKET, SO_PRIORITY, r->value);
    default:
      return EOPNOTSUPP;
  }
}

static const char *operation_name(int op) {
  static const char *names[] = {"?", "repair", "freeze-filter", "detach-filter", "sndbufforce", "rcvbufforce", "transparent", "mark", "priority"};
  return op >= 1 && op <= 8 ? names[op] : "unknown";
}

/* Serves one datagram. Returns 0 to keep the client, -1 to drop it. */
static int serve(int client) {
  struct request r;
  char control[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {&r, sizeof(r)};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(client, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0) return -1;
  /* Collect every descriptor passed, whatever else is wrong, so none leaks. */
  int fds[4];
  int count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k && count < 4; i++) memcpy(&fds[count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  int error;
  if (n != (ssize_t)sizeof(r) || (msg.msg_flags & MSG_TRUNC) || r.magic != MAGIC || r.reserved != 0) error = EBADMSG;
  else if (count != 1 || (msg.msg_flags & MSG_CTRUNC)) error = EINVAL;
  else error = perform(fds[0], &r);
  for (int i = 0; i < count; i++) close(fds[i]);
  if (error && error != EPERM) log_line("refused %s(%d): %s", n == (ssize_t)sizeof(r) ? operation_name(r.operation) : "malformed", n == (ssize_t)sizeof(r) ? r.value : 0, strerror(error));
  struct response answer = {MAGIC, -error};
  if (send(client, &answer, sizeof(answer), MSG_NOSIGNAL) != (ssize_t)sizeof(answer)) return -1;
  return 0;
}

static int allowed_uid(uid_t uid) {
  for (int i = 0; i < allowed_count; i++)
    if (allowed[i] == uid) return 1;
  return 0;
}

int main(int argc, char **argv) {
  const char *path = NULL;
  mode_t mode = 0600;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--socket") == 0 && next) path = argv[++i];
    else if (strcmp(arg, "--allow-uid") == 0 && next && allowed_count < MAX_ALLOWED) allowed[allowed_count++] = (uid_t)strtoul(argv[++i], NULL, 10);
    else if (strcmp(arg, "--mode") == 0 && next) mode = (mode_t)strtoul(argv[++i], NULL, 8);
    else if (strcmp(arg, "--max-buffer") == 0 && next) max_buffer = strtol(argv[++i], NULL, 10);
    else if (strcmp(arg, "--max-priority") == 0 && next) max_priority = strtol(argv[++i], NULL, 10);
    else if (strcmp(arg, "--quiet") == 0) quiet = 1;
    else die("usage: tcp-repair-helper --socket PATH [--allow-uid UID]... [--mode OCTAL] [--max-buffer BYTES] [--max-priority N] [--quiet]");
  }
  if (!path) die("--socket PATH is required");
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) die("socket path too long");
  if (allowed_count == 0) allowed[allowed_count++] = getuid();
  if (max_buffer < 0 || max_buffer > INT32_MAX) die("--max-buffer must be 0..%d", INT32_MAX);

  drop_other_capabilities();
  if (getuid() == 0) log_line("running as uid 0: prefer a dedicated user (only CAP_NET_ADMIN is kept either way)");
  own_netns = netns_inode_of_self();
  signal(SIGPIPE, SIG_IGN);

  int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket: %s", strerror(errno));
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  strcpy(address.sun_path, path);
  unlink(path); /* a stale socket from an earlier run */
  mode_t old = umask(0777 & ~mode);
  if (bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0) die("bind %s: %s", path, strerror(errno));
  umask(old);
  if (chmod(path, mode) != 0) die("chmod %s: %s", path, strerror(errno));
  if (listen(listener, 16) != 0) die("listen: %s", strerror(errno));
  printf("ready %s\n", path);
  fflush(stdout);

  struct pollfd polls[MAX_CLIENTS + 1];
  int clients = 0;
  polls[0].fd = listener;
  polls[0].events = POLLIN;
  for (;;) {
    if (poll(polls, (nfds_t)clients + 1, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll: %s", strerror(errno));
    }
    for (int i = clients; i >= 1; i--) {
      if (!polls[i].revents) continue;
      if ((polls[i].revents & POLLIN) && serve(polls[i].fd) == 0) continue;
      close(polls[i].fd);
      polls[i] = polls[clients--];
    }
    if (polls[0].revents & POLLIN) {
      int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
      if (client < 0) continue;
      struct ucred peer = {0, (uid_t)-1, (gid_t)-1};
      socklen_t len = sizeof(peer);
      if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || !allowed_uid(peer.uid)) {
        log_line("refused a client with uid %d (not allowed)", (int)peer.uid);
        close(client);
      } else if (clients == MAX_CLIENTS) {
        log_line("refused a client: %d clients already", MAX_CLIENTS);
        close(client);
      } else {
        clients++;
        polls[clients].fd = client;
        polls[clients].events = POLLIN;
        polls[clients].revents = 0;
      }
    }
  }
}
