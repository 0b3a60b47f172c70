/**
 * The shape of the native addon, declared once. Every function is synchronous, takes a file
 * descriptor first, performs one kernel operation (or a tight loop of one) and throws a
 * Node-shaped {@link ErrnoError} on failure.
 */

/** TCP_REPAIR values: on, off (sends a window probe), off without a window probe (~4.18+). */
export type RepairMode = 1 | 0 | -1;
/** TCP_REPAIR_QUEUE values: none, receive queue, send queue. */
export type RepairQueue = 0 | 1 | 2;
/** Address family as Node names it numerically: 4 or 6. */
export type Family = 4 | 6;

/** TCP_REPAIR_OPTIONS: the options negotiated in the original handshake. */
export interface RepairOptions {
  /** TCPOPT_MSS: the segment size clamp. */
  mss?: number;
  /** Window scale of what this socket sends (the peer's shift); give both scales or neither. */
  sndWscale?: number;
  /** Window scale of what this socket receives (its own shift). */
  rcvWscale?: number;
  /** SACK was negotiated. */
  sackPermitted?: boolean;
  /** TCP timestamps were negotiated. */
  timestamps?: boolean;
}

/** TCP_REPAIR_WINDOW, the legacy 20-byte struct. */
export interface RepairWindow {
  /** Sequence number of the segment that last updated the send window. */
  sndWl1: number;
  /** The peer's advertised window (bytes, scaled). */
  sndWnd: number;
  /** The largest window the peer ever advertised. */
  maxWindow: number;
  /** The window this socket advertises. */
  rcvWnd: number;
  /** rcv_nxt at the last window update sent to the peer. */
  rcvWup: number;
}

/** A socket address as getsockname(2)/getpeername(2) give it. */
export interface SocketAddress {
  /** Text form: '198.18.0.10', 'fd00::1'. */
  address: string;
  family: 'IPv4' | 'IPv6' | 'unknown';
  port: number;
  /** IPv6 scope (interface index) of a link-local address. */
  scopeId?: number;
}

export interface SocketKind {
  domain: number;
  type: number;
  protocol: number;
}

/** TCP_INFO decoded. Fields after `rcvWscale` appear only when the running kernel fills them. */
export interface TcpInfo {
  state: number;
  caState: number;
  retransmits: number;
  probes: number;
  backoff: number;
  options: number;
  timestamps: boolean;
  sack: boolean;
  windowScaling: boolean;
  ecn: boolean;
  sndWscale: number;
  rcvWscale: number;
  rto?: number;
  ato?: number;
  sndMss?: number;
  rcvMss?: number;
  unacked?: number;
  sacked?: number;
  lost?: number;
  retrans?: number;
  lastDataSent?: number;
  lastAckSent?: number;
  lastDataRecv?: number;
  lastAckRecv?: number;
  pmtu?: number;
  rcvSsthresh?: number;
  rtt?: number;
  rttvar?: number;
  sndSsthresh?: number;
  sndCwnd?: number;
  advmss?: number;
  reordering?: number;
  rcvRtt?: number;
  rcvSpace?: number;
  totalRetrans?: number;
  pacingRate?: number;
  bytesAcked?: number;
  bytesReceived?: number;
  segsOut?: number;
  segsIn?: number;
  notsentBytes?: number;
  minRtt?: number;
  dataSegsIn?: number;
  dataSegsOut?: number;
  deliveryRate?: number;
  bytesSent?: number;
  bytesRetrans?: number;
  dsackDups?: number;
  reordSeen?: number;
  rcvOooPack?: number;
  sndWnd?: number;
}

/** Constants read from the kernel and libc headers the addon was built against. */
export interface NativeConstants {
  readonly [name: string]: number;
  SOL_SOCKET: number;
  IPPROTO_IP: number;
  IPPROTO_IPV6: number;
  SOL_TCP: number;
  IPPROTO_TCP: number;
  AF_INET: number;
  AF_INET6: number;
  SOCK_STREAM: number;
}

export interface NativeBinding {
  setRepair(fd: number, mode: RepairMode): void;
  getRepair(fd: number): number;
  setRepairQueue(fd: number, queue: RepairQueue): void;
  getQueueSeq(fd: number): number;
  setQueueSeq(fd: number, seq: number): void;
  setRepairOptions(fd: number, options: RepairOptions): void;
  getRepairWindow(fd: number): RepairWindow;
  setRepairWindow(fd: number, window: RepairWindow): void;
  getTimestamp(fd: number): number;
  setTimestamp(fd: number, timestamp: number): void;
  getInq(fd: number): number;
  getOutq(fd: number): number;
  getOutqNotSent(fd: number): number;
  peekQueue(fd: number, length: number): Buffer;
  refillQueue(fd: number, bytes: Uint8Array): number;
  createSocket(family: Family): number;
  bind(fd: number, family: Family, address: string, port: number): void;
  connect(fd: number, family: Family, address: string, port: number): void;
  listen(fd: number, backlog: number): void;
  shutdown(fd: number, how: 0 | 1 | 2): void;
  dup(fd: number): number;
  close(fd: number): void;
  getSockName(fd: number): SocketAddress;
  getPeerName(fd: number): SocketAddress;
  socketKind(fd: number): SocketKind;
  attachDropFilter(fd: number): void;
  detachFilter(fd: number): void;
  waitForFilterGracePeriod(): void;
  pidfdGetFd(pid: number, fd: number): number;
  getIntOption(fd: number, level: number, name: number): number;
  setIntOption(fd: number, level: number, name: number, value: number): void;
  getCongestion(fd: number): string;
  setCongestion(fd: number, name: string): void;
  getTcpInfo(fd: number): TcpInfo;
  unixConnect(path: string, timeoutMs: number): number;
  sendWithFds(sock: number, bytes: Uint8Array, fds: number[]): void;
  recvMessage(sock: number, maxBytes: number): Buffer;
  // Hot-path forms (src/batch.ts): the same kernel calls, results in caller-owned typed arrays.
  /** getsockopt of each (level, name) pair of `spec` into `out`, in order. */
  getIntOptions(fd: number, spec: Int32Array, out: Int32Array): void;
  /** setsockopt of the first `count` (level, name, value) triples of `spec`, in order; stops at the first error. */
  setIntOptions(fd: number, spec: Int32Array, count: number): void;
  getTcpInfoBytes(fd: number, out: Uint8Array): number;
  getRepairWindowInto(fd: number, out: Uint32Array): void;
  setRepairWindowFrom(fd: number, window: Uint32Array): void;
  /** TCP_REPAIR_OPTIONS from the first `count` of the kernel's (code, value) pairs. */
  setRepairOptionsRaw(fd: number, pairs: Uint32Array, count: number): void;
  /** SIOCINQ, SIOCOUTQ, SIOCOUTQNSD into out[0..2]. */
  getQueueSizes(fd: number, out: Int32Array): void;
  peekQueueInto(fd: number, into: Uint8Array, offset: number, length: number): number;
  readQueuesInto(fd: number, into: Uint8Array, inq: number, outq: number, out: Uint32Array): void;
  getSockNameText(fd: number, port: Int32Array): string;
  getPeerNameText(fd: number, port: Int32Array): string;
  readonly constants: NativeConstants;
}
