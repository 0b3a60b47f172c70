/**
 * The typed low-level API: each function is one kernel operation on a file descriptor, with
 * the names of the TCP_REPAIR protocol. For experiments and for the higher layers; the order
 * in which these must be called to checkpoint or restore lives in checkpoint.ts / restore.ts.
 */
import { native } from './load-addon.cjs';
import { tcpFamilyOf } from './socket-kind.js';
import { privileged, type HelperOperationName } from './repair-helper.js';
import type { Family, RepairOptions, RepairWindow, SocketAddress, TcpInfo } from './native-types.js';

export type { Family, RepairOptions, RepairWindow, SocketAddress, TcpInfo } from './native-types.js';

/** Constants from the headers the addon was compiled against. */
export const constants = native.constants;
const C = native.constants;

/** A repair queue (TCP_REPAIR_QUEUE): 'none' (TCP_NO_QUEUE), 'recv' (TCP_RECV_QUEUE), 'send' (TCP_SEND_QUEUE). */
export type QueueName = 'none' | 'recv' | 'send';
const QUEUE_IDS: Record<QueueName, 0 | 1 | 2> = { none: 0, recv: 1, send: 2 };

/** A 32-bit sequence/clock value: any integer, wrapped modulo 2^32 (so `a - b` works); not a non-number. */
function u32(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer`);
  return value >>> 0;
}

/** TCP states as the kernel numbers them (include/net/tcp_states.h). */
export const TcpState = {
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT1: 4,
  FIN_WAIT2: 5,
  TIME_WAIT: 6,
  CLOSE: 7,
  CLOSE_WAIT: 8,
  LAST_ACK: 9,
  LISTEN: 10,
  CLOSING: 11,
} as const;
/** A TCP state's kernel name, e.g. 'ESTABLISHED'. */
export type TcpStateName = keyof typeof TcpState;
/** The name of a kernel TCP state number (as in `tcpInfo(fd).state`), or 'UNKNOWN'. */
export function tcpStateName(state: number): TcpStateName | 'UNKNOWN' {
  for (const [name, value] of Object.entries(TcpState)) if (value === state) return name as TcpStateName;
  return 'UNKNOWN';
}

// ---- repair mode -------------------------------------------------------------------------

/**
 * TCP_REPAIR = 1. Needs CAP_NET_ADMIN in the socket's network namespace, or a repair helper
 * (configureRepairHelper): every operation repair mode then allows works without privilege.
 */
export function repairOn(fd: number): void {
  privileged('repair', fd, 1, 'setsockopt(TCP_REPAIR)', () => native.setRepair(fd, 1));
}

/**
 * Leaves repair mode. By default the kernel sends a window probe so the peer answers at once;
 * `windowProbe: false` (TCP_REPAIR_OFF_NO_WP, ~4.18+) stays silent.
 */
export function repairOff(fd: number, options: { windowProbe?: boolean } = {}): void {
  const mode = options.windowProbe === false ? -1 : 0;
  privileged('repair', fd, mode, 'setsockopt(TCP_REPAIR)', () => native.setRepair(fd, mode));
}

/** Whether the socket is in repair mode (reads TCP_REPAIR). */
export function isInRepair(fd: number): boolean {
  return native.getRepair(fd) !== 0;
}

/** TCP_REPAIR_QUEUE: which queue the following seq/peek/refill calls address. */
export function selectQueue(fd: number, queue: QueueName): void {
  native.setRepairQueue(fd, QUEUE_IDS[queue]);
}

/** TCP_QUEUE_SEQ of a queue: rcv_nxt for 'recv', write_seq (next byte to queue) for 'send'. */
export function getQueueSeq(fd: number, queue: Exclude<QueueName, 'none'>): number {
  native.setRepairQueue(fd, QUEUE_IDS[queue]);
  return native.getQueueSeq(fd);
}

/** Sets a queue's sequence number; only before the repair-mode connect (EPERM after). */
export function setQueueSeq(fd: number, queue: Exclude<QueueName, 'none'>, seq: number): void {
  const value = u32('seq', seq);
  native.setRepairQueue(fd, QUEUE_IDS[queue]);
  native.setQueueSeq(fd, value);
}

/** TCP_REPAIR_OPTIONS: restore the handshake's options (established repair socket, no data yet). */
export function setRepairOptions(fd: number, options: RepairOptions): void {
  native.setRepairOptions(fd, options);
}

/** TCP_REPAIR_WINDOW (repair mode, kernel ~4.8+). */
export function getRepairWindow(fd: number): RepairWindow {
  return native.getRepairWindow(fd);
}

/**
 * Sets TCP_REPAIR_WINDOW (repair mode). The kernel refuses (EINVAL) unless rcv_wup <= rcv_nxt,
 * snd_wl1 <= rcv_nxt + rcv_wnd and max_window >= snd_wnd, so restore sets it after the receive refill.
 */
export function setRepairWindow(fd: number, window: RepairWindow): void {
  native.setRepairWindow(fd, window);
}

/** TCP_TIMESTAMP: the socket's timestamp clock (read any time, set in repair mode). */
export function getTimestamp(fd: number): number {
  return native.getTimestamp(fd);
}

/** Sets the timestamp clock (repair mode) so the peer's PAWS check accepts the restored socket's segments. */
export function setTimestamp(fd: number, timestamp: number): void {
  native.setTimestamp(fd, u32('timestamp', timestamp));
}

/** TCP_MAXSEG: in repair mode this reads the MSS clamp. */
export function getMaxSeg(fd: number): number {
  return native.getIntOption(fd, C.SOL_TCP, C.TCP_MAXSEG!);
}

/** Set before a repair-mode connect, or the restored socket computes its MSS from 536. */
export function setMaxSeg(fd: number, mss: number): void {
  native.setIntOption(fd, C.SOL_TCP, C.TCP_MAXSEG!, mss);
}

// ---- queues --------------------------------------------------------------------------------

/** Byte counts of a socket's queues, read with ioctls that need no repair mode. */
export interface QueueSizes {
  /** SIOCINQ: received bytes not yet read. */
  inq: number;
  /** SIOCOUTQ: bytes in the send queue (sent-unacked plus unsent). */
  outq: number;
  /** SIOCOUTQNSD: bytes in the send queue not yet sent. */
  notSent: number;
}

/** The three queue sizes at once (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD). */
export function queueSizes(fd: number): QueueSizes {
  return { inq: native.getInq(fd), outq: native.getOutq(fd), notSent: native.getOutqNotSent(fd) };
}

/** Copies a queue without consuming it (repair mode; MSG_PEEK). */
export function peekQueue(fd: number, queue: Exclude<QueueName, 'none'>, length: number): Buffer {
  native.setRepairQueue(fd, QUEUE_IDS[queue]);
  return native.peekQueue(fd, length);
}

/** Appends bytes to a queue without transmitting them (repair mode; chunked sends). */
export function refillQueue(fd: number, queue: Exclude<QueueName, 'none'>, bytes: Uint8Array): number {
  native.setRepairQueue(fd, QUEUE_IDS[queue]);
  return native.refillQueue(fd, bytes);
}

// ---- socket lifecycle ------------------------------------------------------------------------

/** socket(2): a new blocking, close-on-exec TCP socket of the family; libuv does not watch it. */
export function createSocket(family: Family): number {
  return native.createSocket(family);
}

/** bind(2). An IPv4 text on an IPv6 socket binds the v4-mapped address. */
export function bind(fd: number, family: Family, address: string, port: number): void {
  native.bind(fd, family, address, port);
}

/** connect(2). In repair mode: no SYN, the socket is ESTABLISHED at once. */
export function connect(fd: number, family: Family, address: string, port: number): void {
  native.connect(fd, family, address, port);
}

/** listen(2). In repair mode it binds the port without accepting anything (restore's hand-over guard). */
export function listen(fd: number, backlog = 0): void {
  native.listen(fd, backlog);
}

/** shutdown(2): 'read' (SHUT_RD), 'write' (SHUT_WR, sends FIN) or 'both'. */
export function shutdown(fd: number, how: 'read' | 'write' | 'both'): void {
  native.shutdown(fd, how === 'read' ? 0 : how === 'write' ? 1 : 2);
}

/** A CLOEXEC duplicate. */
export function dupFd(fd: number): number {
  return native.dup(fd);
}

/** close(2). In repair mode nothing is sent: neither FIN nor RST. */
export function closeFd(fd: number): void {
  native.close(fd);
}

/** getsockname(2): the socket's local address and port. */
export function localAddress(fd: number): SocketAddress {
  return native.getSockName(fd);
}

/** getpeername(2): the peer's address and port; ENOTCONN when not connected. */
export function peerAddress(fd: number): SocketAddress {
  return native.getPeerName(fd);
}

/** A CLOEXEC copy of file descriptor `fd` of process `pid` (pidfd_getfd, Linux 5.6+). */
export function fdFromProcess(pid: number, fd: number): number {
  return native.pidfdGetFd(pid, fd);
}

/** Drop every incoming segment before TCP sees it: a per-socket freeze lock. */
export function attachFreezeFilter(fd: number): void {
  privileged('freezeFilter', fd, 0, 'setsockopt(SO_ATTACH_FILTER)', () => native.attachDropFilter(fd));
}

/** Removes the freeze filter (SO_DETACH_FILTER): segments reach TCP again. */
export function detachFreezeFilter(fd: number): void {
  privileged('detachFilter', fd, 0, 'setsockopt(SO_DETACH_FILTER)', () => native.detachFilter(fd));
}

/**
 * Returns after an RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL), typically 5-20 ms): by
 * then no CPU is still handling a segment that passed a socket's filter before
 * {@link attachFreezeFilter}, so one call after attaching the filters of a whole batch makes
 * their locks hold. EINVAL on nohz_full kernels, ENOSYS without CONFIG_MEMBARRIER.
 */
export function waitForFilterGracePeriod(): void {
  native.waitForFilterGracePeriod();
}

/** TCP_INFO, decoded: state, options, RTT, windows, counters. Needs no repair mode. */
export function tcpInfo(fd: number): TcpInfo {
  return native.getTcpInfo(fd);
}

// ---- socket options ------------------------------------------------------------------------

/** The integer socket options tcp-repair can read and write, by their kernel names. */
export type IntOptionName =
  | 'SO_REUSEADDR' | 'SO_REUSEPORT' | 'SO_KEEPALIVE' | 'SO_SNDBUF' | 'SO_RCVBUF' | 'SO_SNDBUFFORCE'
  | 'SO_RCVBUFFORCE' | 'SO_PRIORITY' | 'SO_MARK' | 'SO_OOBINLINE' | 'SO_TYPE' | 'SO_PROTOCOL' | 'SO_DOMAIN'
  | 'SO_ERROR' | 'SO_RCVLOWAT' | 'IP_TOS' | 'IP_TTL' | 'IP_FREEBIND' | 'IP_TRANSPARENT' | 'IPV6_TCLASS'
  | 'IPV6_UNICAST_HOPS' | 'IPV6_V6ONLY' | 'IPV6_FREEBIND' | 'IPV6_TRANSPARENT' | 'TCP_NODELAY' | 'TCP_CORK'
  | 'TCP_MAXSEG' | 'TCP_KEEPIDLE' | 'TCP_KEEPINTVL' | 'TCP_KEEPCNT' | 'TCP_USER_TIMEOUT'
  | 'TCP_NOTSENT_LOWAT' | 'TCP_QUICKACK' | 'TCP_WINDOW_CLAMP' | 'TCP_THIN_LINEAR_TIMEOUTS' | 'TCP_LINGER2'
  | 'TCP_DEFER_ACCEPT' | 'TCP_SYNCNT' | 'TCP_REPAIR';

function levelOf(name: IntOptionName): number {
  if (name.startsWith('SO_')) return C.SOL_SOCKET;
  if (name.startsWith('IPV6_')) return C.IPPROTO_IPV6;
  if (name.startsWith('IP_')) return C.IPPROTO_IP;
  return C.SOL_TCP;
}

function optionNumber(name: IntOptionName): number {
  const value = typeof name === 'string' ? C[name] : undefined;
  if (typeof value !== 'number') throw new TypeError(`unknown socket option ${String(name)}`);
  return value;
}

/** getsockopt(2) of an integer option, by its kernel name (the level follows from the prefix). */
export function getOption(fd: number, name: IntOptionName): number {
  const number = optionNumber(name);
  return native.getIntOption(fd, levelOf(name), number);
}

/** Options the kernel allows only with CAP_NET_ADMIN, and the helper operation for each. */
const PRIVILEGED_OPTIONS: Partial<Record<IntOptionName, HelperOperationName>> = {
  SO_SNDBUFFORCE: 'sndbufForce',
  SO_RCVBUFFORCE: 'rcvbufForce',
  IP_TRANSPARENT: 'transparent',
  IPV6_TRANSPARENT: 'transparent',
  SO_MARK: 'mark',
  SO_PRIORITY: 'priority',
  TCP_REPAIR: 'repair',
};

/** setsockopt(2) of an integer option, by its kernel name; booleans become 0 or 1. */
export function setOption(fd: number, name: IntOptionName, value: number | boolean): void {
  const number = optionNumber(name);
  const v = typeof value === 'boolean' ? Number(value) : value;
  const operation = PRIVILEGED_OPTIONS[name];
  if (operation === undefined || typeof v !== 'number' || !Number.isInteger(v)) {
    native.setIntOption(fd, levelOf(name), number, v);
    return;
  }
  privileged(operation, fd, v, `setsockopt(${name})`, () => native.setIntOption(fd, levelOf(name), number, v));
}

/** TCP_CONGESTION: the congestion control algorithm's name, e.g. 'cubic'. */
export function getCongestion(fd: number): string {
  return native.getCongestion(fd);
}

/** Sets TCP_CONGESTION; the algorithm must be available (allowed) on this host. */
export function setCongestion(fd: number, name: string): void {
  native.setCongestion(fd, name);
}

/** IP_FREEBIND / IPV6_FREEBIND: bind an address this host does not (yet) own. */
export function setFreebind(fd: number, family: Family, on = true): void {
  setOption(fd, family === 4 ? 'IP_FREEBIND' : 'IPV6_FREEBIND', on);
}

/** IP_TRANSPARENT / IPV6_TRANSPARENT: also lets a repair-mode connect use a foreign address. */
export function setTransparent(fd: number, family: Family, on = true): void {
  setOption(fd, family === 4 ? 'IP_TRANSPARENT' : 'IPV6_TRANSPARENT', on);
}

/** The family of a socket fd, refusing anything that is not a TCP stream socket. */
export function assertTcpSocket(fd: number): Family {
  return tcpFamilyOf(fd, native.socketKind(fd));
}
