/*
 * The C reference for `npm run bench`: the same kernel operations, in the same order, as
 * tcp-repair's checkpoint() and restore() (src/checkpoint.ts, src/restore.ts) plus what Node
 * itself does to the fd on the way (libuv adopting the restored fd, closing the released one).
 * Nothing else: no image format, no JavaScript. The Node figure is reported as a ratio to this.
 *
 * Protocol with the bench driver (lines on stdin/stdout):
 *   argv: <listen address> <connections> <idle|queued> [--steps]
 *   out "listening <port>"        the driver now connects the peers (another process)
 *   in  "prepare"                 the peers are connected (and silent): fill the queues
 *   out "ready"                   every connection accepted, its queues filled
 *   in  "go"                      checkpoint all, release all
 *   out "released"                the driver lets the peers talk again (nothing is held now)
 *   in  "restore"                 restore all
 *   out {json}                    per-phase nanoseconds, wall clock and CPU time (and per-step
 *                                 wall-clock ones with --steps)
 *   in  EOF                       exit
 * After the restore each connection gets one byte "!", so the peer can check it still works.
 *
 * Workload "queued": 4 KiB from the peer waiting in the receive queue, and 8 KiB sent but not
 * acknowledged (the peer drops everything behind its own drop-all filter until the sources are
 * released), so the restore refills both repair queues. Keep in step with bench/src/workload.ts
 * and bench/src/peer.ts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_TCP
#define SOL_TCP IPPROTO_TCP
#endif
#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP -1
#endif

/* TCP option kinds of TCP_REPAIR_OPTIONS (glibc's netinet/tcp.h clashes with linux/tcp.h). */
#define OPT_MSS 2
#define OPT_WINDOW 3
#define OPT_SACK_PERM 4
#define OPT_TIMESTAMP 8

#define RECV_BYTES 4096
#define SEND_BYTES 8192
/* Headroom the library adds when forcing buffers to hold refilled queues (restore.ts). */
#define BUFFER_SLACK (256 * 1024)
#define MAX_USER_MSS 32767
#ifndef TCP_CA_NAME_MAX
#define TCP_CA_NAME_MAX 16
#endif

/* The legacy 20-byte struct every kernel since 4.8 accepts (the library passes exactly this). */
struct repair_window {
  uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
};

struct image {
  int family;
  struct sockaddr_storage local, peer;
  socklen_t local_len, peer_len;
  uint32_t recv_seq, send_seq;
  uint8_t *recv_queue, *send_queue;
  int recv_len, send_len, unsent_len;
  int mss, sack, timestamps, wscale, snd_wscale, rcv_wscale;
  uint32_t timestamp;
  struct repair_window window;
  int reuse;
  /* socket-options.ts socketOptionSpec, in its order */
  int nodelay, keepalive, keepidle, keepintvl, keepcnt, user_timeout, sndbuf, rcvbuf, tos, ttl, priority,
      mark, notsent_lowat;
  char congestion[TCP_CA_NAME_MAX + 1];
};

static void die(const char *what) {
  fprintf(stderr, "reference: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- optional per-step timing ------------------------------------------------------------- */

static int steps_on;
#define MAX_STEPS 64
static struct {
  const char *name;
  double ns;
  long calls;
} steps[MAX_STEPS];

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* CPU time of the process: what a phase cost even when the machine is shared. */
static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void add_step(const char *name, double ns) {
  for (int i = 0; i < MAX_STEPS; i++) {
    if (steps[i].name == NULL) steps[i].name = name;
    if (steps[i].name == name || strcmp(steps[i].name, name) == 0) {
      steps[i].ns += ns;
      steps[i].calls++;
      return;
    }
  }
}

/* Runs one kernel operation; with --steps, also charges its time to `name`. */
#define OP(name, expr)                               \
  ({                                                 \
    double t0_ = steps_on ? now_ns() : 0;            \
    long r_ = (long)(expr);                          \
    if (steps_on) add_step(name, now_ns() - t0_);    \
    r_;                                              \
  })
#define MUST(name, expr) \
  do {                   \
    if (OP(name, expr) < 0) die(name); \
  } while (0)

static int get_int(int fd, int level, int opt, const char *name) {
  int v = 0;
  socklen_t len = sizeof(v);
  MUST(name, getsockopt(fd, level, opt, &v, &len));
  return v;
}

static void set_int(int fd, int level, int opt, int v, const char *name) {
  MUST(name, setsockopt(fd, level, opt, &v, sizeof(v)));
}

static int ioctl_int(int fd, unsigned long req, const char *name) {
  int v = 0;
  MUST(name, ioctl(fd, req, &v));
  return v;
}

/* ---- the freeze lock: native/sockets.cc AttachDropFilter ------------------------------------ */

/* The drop-all program as eBPF, loaded once and attached to each socket by fd; the classic
 * one-instruction filter where it cannot be loaded (no CAP_BPF / CAP_SYS_ADMIN). */
static int drop_program = -2;

/* Loaded at start, as the addon loads it when it is loaded. */
static void load_drop_program(void) {
  if (drop_program == -2) {
    struct bpf_insn insns[2];
    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
    insns[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = 2;
    attr.license = (uint64_t)(uintptr_t) "GPL";
    drop_program = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
  }
}

static void attach_drop_filter(int fd) {
  if (drop_program >= 0) {
    MUST("setsockopt(SO_ATTACH_BPF)", setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &drop_program, sizeof(drop_program)));
    return;
  }
  struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_fprog program = {1, drop_all};
  MUST("setsockopt(SO_ATTACH_FILTER)", setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)));
}

/* ---- checkpoint: src/checkpoint.ts ---------------------------------------------------------- */

/* The batch freeze lock, as lockForCheckpoint() (src/freeze-lock.ts): every filter, then one RCU
 * grace period so that no segment that passed a filter before it went on is still in flight. */
static void lock_batch(const int *fds, int n) {
  for (int i = 0; i < n; i++) attach_drop_filter(fds[i]);
  MUST("membarrier(MEMBARRIER_CMD_GLOBAL)", syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
}

static void checkpoint_one(int fd, struct image *im) {
  /* before the freeze: what the socket is, and SO_REUSEADDR (repair mode forces it on) */
  int domain = get_int(fd, SOL_SOCKET, SO_DOMAIN, "getsockopt(SO_DOMAIN)");
  get_int(fd, SOL_SOCKET, SO_TYPE, "getsockopt(SO_TYPE)");
  get_int(fd, SOL_SOCKET, SO_PROTOCOL, "getsockopt(SO_PROTOCOL)");
  im->reuse = get_int(fd, SOL_SOCKET, SO_REUSEADDR, "getsockopt(SO_REUSEADDR)") != 0;
  im->family = domain == AF_INET ? 4 : 6;
  /* freeze lock already on (lock_batch), repair on */
  set_int(fd, SOL_TCP, TCP_REPAIR, 1, "setsockopt(TCP_REPAIR)");
  /* readFrozenState */
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  MUST("getsockopt(TCP_INFO)", getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len));
  len = sizeof(im->window);
  MUST("getsockopt(TCP_REPAIR_WINDOW)", getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &im->window, &len));
  int inq = ioctl_int(fd, SIOCINQ, "ioctl(SIOCINQ)");
  int outq = ioctl_int(fd, SIOCOUTQ, "ioctl(SIOCOUTQ)");
  int notsent = ioctl_int(fd, SIOCOUTQNSD, "ioctl(SIOCOUTQNSD)");
  /* both queues in one allocation */
  uint8_t *queues = malloc(inq + outq > 0 ? inq + outq : 1);
  im->recv_queue = queues;
  im->send_queue = queues + inq;
  set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
  im->recv_seq = (uint32_t)get_int(fd, SOL_TCP, TCP_QUEUE_SEQ, "getsockopt(TCP_QUEUE_SEQ)");
  im->recv_len = inq > 0 ? (int)OP("recv(MSG_PEEK)", recv(fd, im->recv_queue, inq, MSG_PEEK | MSG_DONTWAIT)) : 0;
  set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
  im->send_seq = (uint32_t)get_int(fd, SOL_TCP, TCP_QUEUE_SEQ, "getsockopt(TCP_QUEUE_SEQ)");
  im->send_len = outq > 0 ? (int)OP("recv(MSG_PEEK)", recv(fd, im->send_queue, outq, MSG_PEEK | MSG_DONTWAIT)) : 0;
  set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
  if (im->recv_len != inq || im->send_len != outq) {
    fprintf(stderr, "reference: queues changed while frozen\n");
    exit(1);
  }
  im->unsent_len = notsent;
  im->local_len = sizeof(im->local);
  MUST("getsockname", getsockname(fd, (struct sockaddr *)&im->local, &im->local_len));
  im->peer_len = sizeof(im->peer);
  MUST("getpeername", getpeername(fd, (struct sockaddr *)&im->peer, &im->peer_len));
  im->sack = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
  im->timestamps = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
  im->wscale = (ti.tcpi_options & TCPI_OPT_WSCALE) != 0;
  im->snd_wscale = ti.tcpi_snd_wscale;
  im->rcv_wscale = ti.tcpi_rcv_wscale;
  /* the MSS clamp (TCP_MAXSEG in repair mode), the timestamp clock, the socket options */
  im->mss = get_int(fd, SOL_TCP, TCP_MAXSEG, "getsockopt(int option)");
  im->timestamp = im->timestamps ? (uint32_t)get_int(fd, SOL_TCP, TCP_TIMESTAMP, "getsockopt(int option)") : 0;
  im->nodelay = get_int(fd, SOL_TCP, TCP_NODELAY, "getsockopt(int option)");
  im->keepalive = get_int(fd, SOL_SOCKET, SO_KEEPALIVE, "getsockopt(int option)");
  im->keepidle = get_int(fd, SOL_TCP, TCP_KEEPIDLE, "getsockopt(int option)");
  im->keepintvl = get_int(fd, SOL_TCP, TCP_KEEPINTVL, "getsockopt(int option)");
  im->keepcnt = get_int(fd, SOL_TCP, TCP_KEEPCNT, "getsockopt(int option)");
  im->user_timeout = get_int(fd, SOL_TCP, TCP_USER_TIMEOUT, "getsockopt(int option)");
  im->sndbuf = get_int(fd, SOL_SOCKET, SO_SNDBUF, "getsockopt(int option)");
  im->rcvbuf = get_int(fd, SOL_SOCKET, SO_RCVBUF, "getsockopt(int option)");
  im->tos = im->family == 4 ? get_int(fd, IPPROTO_IP, IP_TOS, "getsockopt(int option)")
                            : get_int(fd, IPPROTO_IPV6, IPV6_TCLASS, "getsockopt(int option)");
  im->ttl = im->family == 4 ? get_int(fd, IPPROTO_IP, IP_TTL, "getsockopt(int option)")
                            : get_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, "getsockopt(int option)");
  im->priority = get_int(fd, SOL_SOCKET, SO_PRIORITY, "getsockopt(int option)");
  im->mark = get_int(fd, SOL_SOCKET, SO_MARK, "getsockopt(int option)");
  im->notsent_lowat = get_int(fd, SOL_TCP, TCP_NOTSENT_LOWAT, "getsockopt(int option)");
  len = TCP_CA_NAME_MAX;
  memset(im->congestion, 0, sizeof(im->congestion));
  MUST("getsockopt(TCP_CONGESTION)", getsockopt(fd, SOL_TCP, TCP_CONGESTION, im->congestion, &len));
  /* close the send window while frozen */
  struct repair_window closed = im->window;
  closed.snd_wnd = 0;
  MUST("setsockopt(TCP_REPAIR_WINDOW)", setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &closed, sizeof(closed)));
}

/* ---- release: closing the frozen source (libuv takes it out of its epoll set first) ---------- */

static void release_one(int epfd, int fd) {
  struct epoll_event unused;
  OP("epoll_ctl(DEL)", epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &unused)); /* ENOENT, as for libuv */
  MUST("close", close(fd));
}

/* ---- restore: src/restore.ts, then Node adopting the fd (new net.Socket({ fd })) ---------- */

static int restore_one(const struct image *im) {
  int fd = (int)OP("socket", socket(im->family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
  if (fd < 0) die("socket");
  set_int(fd, SOL_SOCKET, SO_REUSEADDR, im->reuse, "setsockopt(SO_REUSEADDR)");
  set_int(fd, SOL_TCP, TCP_REPAIR, 1, "setsockopt(TCP_REPAIR)");
  MUST("bind", bind(fd, (const struct sockaddr *)&im->local, im->local_len));
  int sent_unacked = im->send_len - im->unsent_len;
  set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
  set_int(fd, SOL_TCP, TCP_QUEUE_SEQ, (int)(im->recv_seq - (uint32_t)im->recv_len), "setsockopt(TCP_QUEUE_SEQ)");
  set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
  set_int(fd, SOL_TCP, TCP_QUEUE_SEQ, (int)(im->send_seq - (uint32_t)im->send_len), "setsockopt(TCP_QUEUE_SEQ)");
  set_int(fd, SOL_TCP, TCP_MAXSEG, im->mss < MAX_USER_MSS ? im->mss : MAX_USER_MSS, "setsockopt(TCP_MAXSEG)");
  /* applySocketOptions */
  set_int(fd, SOL_TCP, TCP_NODELAY, im->nodelay != 0, "setsockopt(int option)");
  set_int(fd, SOL_TCP, TCP_KEEPIDLE, im->keepidle, "setsockopt(int option)");
  set_int(fd, SOL_TCP, TCP_KEEPINTVL, im->keepintvl, "setsockopt(int option)");
  set_int(fd, SOL_TCP, TCP_KEEPCNT, im->keepcnt, "setsockopt(int option)");
  set_int(fd, SOL_SOCKET, SO_KEEPALIVE, im->keepalive != 0, "setsockopt(int option)");
  set_int(fd, SOL_TCP, TCP_USER_TIMEOUT, im->user_timeout, "setsockopt(int option)");
  if (im->family == 4) {
    set_int(fd, IPPROTO_IP, IP_TOS, im->tos, "setsockopt(int option)");
    set_int(fd, IPPROTO_IP, IP_TTL, im->ttl, "setsockopt(int option)");
  } else {
    set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, im->tos, "setsockopt(int option)");
    set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, im->ttl, "setsockopt(int option)");
  }
  if (im->priority != 0) set_int(fd, SOL_SOCKET, SO_PRIORITY, im->priority, "setsockopt(int option)");
  if (im->mark != 0) set_int(fd, SOL_SOCKET, SO_MARK, im->mark, "setsockopt(int option)");
  set_int(fd, SOL_TCP, TCP_NOTSENT_LOWAT, im->notsent_lowat, "setsockopt(int option)");
  char current[TCP_CA_NAME_MAX + 1] = {0};
  socklen_t len = TCP_CA_NAME_MAX;
  MUST("getsockopt(TCP_CONGESTION)", getsockopt(fd, SOL_TCP, TCP_CONGESTION, current, &len));
  if (strcmp(current, im->congestion) != 0)
    MUST("setsockopt(TCP_CONGESTION)", setsockopt(fd, SOL_TCP, TCP_CONGESTION, im->congestion, strlen(im->congestion)));
  MUST("connect", connect(fd, (const struct sockaddr *)&im->peer, im->peer_len));
  struct tcp_repair_opt opts[4];
  int n = 0;
  opts[n++] = (struct tcp_repair_opt){OPT_MSS, (uint32_t)im->mss};
  if (im->wscale) opts[n++] = (struct tcp_repair_opt){OPT_WINDOW, (uint32_t)(im->snd_wscale | (im->rcv_wscale << 16))};
  if (im->sack) opts[n++] = (struct tcp_repair_opt){OPT_SACK_PERM, 0};
  if (im->timestamps) opts[n++] = (struct tcp_repair_opt){OPT_TIMESTAMP, 0};
  MUST("setsockopt(TCP_REPAIR_OPTIONS)", setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof(opts[0])));
  if (im->timestamps) set_int(fd, SOL_TCP, TCP_TIMESTAMP, (int)im->timestamp, "setsockopt(TCP_TIMESTAMP)");
  /* forceBuffersFor */
  if (im->send_len > 0) {
    int wanted = im->sndbuf / 2 > im->send_len * 2 + BUFFER_SLACK ? im->sndbuf / 2 : im->send_len * 2 + BUFFER_SLACK;
    set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, wanted, "setsockopt(SO_SNDBUFFORCE)");
  }
  if (im->recv_len > 0) {
    int wanted = im->rcvbuf / 2 > im->recv_len * 2 + BUFFER_SLACK ? im->rcvbuf / 2 : im->recv_len * 2 + BUFFER_SLACK;
    set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, wanted, "setsockopt(SO_RCVBUFFORCE)");
  }
  if (im->recv_len > 0) {
    set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    MUST("send(repair queue)", send(fd, im->recv_queue, im->recv_len, MSG_DONTWAIT | MSG_NOSIGNAL));
  }
  if (sent_unacked > 0) {
    set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    MUST("send(repair queue)", send(fd, im->send_queue, sent_unacked, MSG_DONTWAIT | MSG_NOSIGNAL));
  }
  set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
  MUST("setsockopt(TCP_REPAIR_WINDOW)", setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &im->window, sizeof(im->window)));
  set_int(fd, SOL_TCP, TCP_REPAIR, 0, "setsockopt(TCP_REPAIR off)");
  set_int(fd, SOL_SOCKET, SO_REUSEADDR, im->reuse, "setsockopt(SO_REUSEADDR)");
  /* Node adopting the fd: uv_guess_handle (isatty, fstat, getsockname, SO_TYPE), uv_tcp_open (FIONBIO) */
  struct termios tio;
  OP("ioctl(TCGETS)", ioctl(fd, TCGETS, &tio));
  struct stat st;
  MUST("fstat", fstat(fd, &st));
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  MUST("getsockname", getsockname(fd, (struct sockaddr *)&ss, &sslen));
  get_int(fd, SOL_SOCKET, SO_TYPE, "getsockopt(SO_TYPE)");
  int one = 1;
  MUST("ioctl(FIONBIO)", ioctl(fd, FIONBIO, &one));
  return fd;
}

/* ---- workload ------------------------------------------------------------------------------- */

static void prepare_queued(int *fds, int n) {
  /* Wait for the peer's 4 KiB on every connection. */
  for (int i = 0; i < n; i++) {
    int spins = 0;
    while (ioctl_int(fds[i], SIOCINQ, "ioctl(SIOCINQ)") < RECV_BYTES) {
      if (++spins > 200000) die("peer bytes never arrived");
      usleep(50);
    }
  }
  /* The peer drops everything from now on (its own drop-all filter): the bytes stay unacked. */
  static uint8_t payload[SEND_BYTES];
  memset(payload, 2, sizeof(payload));
  for (int i = 0; i < n; i++)
    if (send(fds[i], payload, sizeof(payload), 0) != (ssize_t)sizeof(payload)) die("send");
  for (int i = 0; i < n; i++) {
    int spins = 0;
    while (ioctl_int(fds[i], SIOCOUTQ, "ioctl(SIOCOUTQ)") < SEND_BYTES || ioctl_int(fds[i], SIOCOUTQNSD, "ioctl(SIOCOUTQNSD)") > 0) {
      if (++spins > 200000) die("send queue never settled");
      usleep(50);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: reference <listen address> <connections> <idle|queued> [--steps]\n");
    return 2;
  }
  const char *address = argv[1];
  int n = atoi(argv[2]);
  int queued = strcmp(argv[3], "queued") == 0;
  steps_on = argc > 4 && strcmp(argv[4], "--steps") == 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  load_drop_program();

  struct sockaddr_storage addr = {0};
  socklen_t addr_len;
  int family;
  struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    addr_len = sizeof(*sin);
    family = AF_INET;
  } else if (inet_pton(AF_INET6, address, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    addr_len = sizeof(*sin6);
    family = AF_INET6;
  } else {
    fprintf(stderr, "reference: bad address %s\n", address);
    return 2;
  }
  int listener = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, 4096) != 0) die("listen");
  addr_len = sizeof(addr);
  getsockname(listener, (struct sockaddr *)&addr, &addr_len);
  printf("listening %d\n", ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port));

  int *fds = calloc(n, sizeof(int));
  for (int i = 0; i < n; i++) {
    fds[i] = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fds[i] < 0) die("accept");
  }
  close(listener);
  char line[64];
  if (!fgets(line, sizeof(line), stdin)) return 0;
  if (queued) prepare_queued(fds, n);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  printf("ready\n");
  if (!fgets(line, sizeof(line), stdin)) return 0;

  struct image *images = calloc(n, sizeof(struct image));
  int *restored = calloc(n, sizeof(int));
  memset(steps, 0, sizeof(steps));
  double t0 = now_ns(), c0 = cpu_ns();
  lock_batch(fds, n);
  for (int i = 0; i < n; i++) checkpoint_one(fds[i], &images[i]);
  double t1 = now_ns(), c1 = cpu_ns();
  for (int i = 0; i < n; i++) release_one(epfd, fds[i]);
  double t2 = now_ns(), c2 = cpu_ns();
  printf("released\n");
  if (!fgets(line, sizeof(line), stdin)) return 0;
  double t2b = now_ns(), c2b = cpu_ns();
  for (int i = 0; i < n; i++) restored[i] = restore_one(&images[i]);
  double t3 = now_ns(), c3 = cpu_ns();

  printf("{\"checkpointNs\":%.0f,\"releaseNs\":%.0f,\"restoreNs\":%.0f", t1 - t0, t2 - t1, t3 - t2b);
  printf(",\"checkpointCpuNs\":%.0f,\"releaseCpuNs\":%.0f,\"restoreCpuNs\":%.0f", c1 - c0, c2 - c1, c3 - c2b);
  if (steps_on) {
    printf(",\"steps\":{");
    for (int i = 0; i < MAX_STEPS && steps[i].name; i++)
      printf("%s\"%s\":{\"ns\":%.0f,\"calls\":%ld}", i ? "," : "", steps[i].name, steps[i].ns, steps[i].calls);
    printf("}");
  }
  printf("}\n");
  /* One byte on each restored connection: the peer checks every connection still works. */
  for (int i = 0; i < n; i++)
    if (send(restored[i], "!", 1, MSG_NOSIGNAL) != 1) die("send after restore");
  while (fgets(line, sizeof(line), stdin)) {
  }
  return 0;
}
