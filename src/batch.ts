/**
 * The checkpoint and restore hot paths' view of the addon. The kernel calls are the same as in
 * lowlevel.ts, but a crossing into native code and every object built on the way cost more
 * than many of the syscalls themselves (N-API ~0.1 µs a call; a decoded TCP_INFO object ~7 µs),
 * so here:
 *   - lists of integer options are read or written in one native call (`readInts`, `IntWrites`),
 *     the list and its order decided here, the loop in C++ doing nothing but call the kernel;
 *   - TCP_INFO, the repair window and the queue sizes land in reused typed arrays and only the
 *     fields needed are decoded.
 * Everything is synchronous and reuses module-level scratch arrays: no call here may await.
 */
import { native } from './load-addon.cjs';
import { isErrnoError } from './errors.js';
import { explainPermission, privileged, throughHelper, type HelperOperationName } from './repair-helper.js';
import type { Family, RepairWindow } from './native-types.js';
import type { NegotiatedOptions } from './image.js';

export const C = native.constants;

/** A (level, name) list for readInts, built once. */
export function intSpec(pairs: ReadonlyArray<readonly [number, number]>): Int32Array {
  return Int32Array.from(pairs.flat());
}

/** getsockopt of every pair in `spec`; the values land in `out` (one slot per pair). */
export function readInts(fd: number, spec: Int32Array, out: Int32Array): Int32Array {
  native.getIntOptions(fd, spec, out);
  return out;
}

/** Options the kernel allows only with CAP_NET_ADMIN (as lowlevel.setOption routes them), by (level, name). */
const PRIVILEGED = new Map<number, { operation: HelperOperationName; syscall: string }>(
  (
    [
      [C.SOL_TCP, 'TCP_REPAIR', 'repair'],
      [C.SOL_SOCKET, 'SO_SNDBUFFORCE', 'sndbufForce'],
      [C.SOL_SOCKET, 'SO_RCVBUFFORCE', 'rcvbufForce'],
      [C.IPPROTO_IP, 'IP_TRANSPARENT', 'transparent'],
      [C.IPPROTO_IPV6, 'IPV6_TRANSPARENT', 'transparent'],
      [C.SOL_SOCKET, 'SO_MARK', 'mark'],
      [C.SOL_SOCKET, 'SO_PRIORITY', 'priority'],
    ] as const
  ).map(([level, name, operation]) => [optionKey(level, C[name]!), { operation, syscall: `setsockopt(${name})` }]),
);
const PRIVILEGED_SYSCALLS = new Set([...[...PRIVILEGED.values()].map((p) => p.syscall), 'setsockopt(TCP_REPAIR_OFF_NO_WP)']);

function optionKey(level: number, name: number): number {
  return level * 0x10000 + name;
}

/**
 * Integer setsockopt calls collected, then made in one native call, in the order added. A
 * single module-level instance is reused (see `intWrites()`); `apply` empties it. A process
 * without CAP_NET_ADMIN that uses the repair helper makes them one at a time instead, the
 * privileged ones through the helper (src/repair-helper.ts).
 */
export class IntWrites {
  private spec = new Int32Array(3 * 32);
  private length = 0;
  private privileged = 0;

  set(level: number, name: number, value: number | boolean): this {
    if (this.length === this.spec.length) {
      const bigger = new Int32Array(this.spec.length * 2);
      bigger.set(this.spec);
      this.spec = bigger;
    }
    // Int32Array stores modulo 2^32: sequence numbers (u32) keep their bits, as setsockopt wants.
    this.spec[this.length] = level;
    this.spec[this.length + 1] = name;
    this.spec[this.length + 2] = typeof value === 'boolean' ? Number(value) : value;
    this.length += 3;
    if (PRIVILEGED.has(optionKey(level, name))) this.privileged++;
    return this;
  }

  apply(fd: number): void {
    const count = this.length / 3;
    const privileged = this.privileged;
    this.length = 0;
    this.privileged = 0;
    if (count === 0) return;
    if (privileged > 0 && throughHelper()) {
      this.applyOneByOne(fd, count);
      return;
    }
    try {
      native.setIntOptions(fd, this.spec, count);
    } catch (error) {
      if (isErrnoError(error) && PRIVILEGED_SYSCALLS.has(error.syscall)) explainPermission(error);
      throw error;
    }
  }

  private applyOneByOne(fd: number, count: number): void {
    for (let i = 0; i < count * 3; i += 3) {
      const [level, name, value] = [this.spec[i]!, this.spec[i + 1]!, this.spec[i + 2]!];
      const how = PRIVILEGED.get(optionKey(level, name));
      if (how === undefined) native.setIntOption(fd, level, name, value);
      else privileged(how.operation, fd, value, how.syscall, () => native.setIntOption(fd, level, name, value));
    }
  }

  /** Forget what was collected (after a failure elsewhere). */
  clear(): void {
    this.length = 0;
    this.privileged = 0;
  }
}

const writes = new IntWrites();

/** The shared collector, emptied (a previous user that threw may have left entries). */
export function intWrites(): IntWrites {
  writes.clear();
  return writes;
}

// ---- TCP_INFO ------------------------------------------------------------------------------

/** The TCP_INFO fields a checkpoint needs. */
export interface TcpInfoBasics {
  state: number;
  sack: boolean;
  timestamps: boolean;
  windowScaling: boolean;
  sndWscale: number;
  rcvWscale: number;
  /** Microsecond TCP timestamps (TCPI_OPT_USEC_TS, 6.7+; always false before). */
  usecTimestamps: boolean;
}

// struct tcp_info (include/uapi/linux/tcp.h): u8 state, ca_state, retransmits, probes, backoff,
// options, then the two window scales as 4-bit fields (snd low, rcv high), ...
const INFO_STATE = 0;
const INFO_OPTIONS = 5;
const INFO_WSCALE = 6;
const TCPI_OPT_TIMESTAMPS = 1;
const TCPI_OPT_SACK = 2;
const TCPI_OPT_WSCALE = 4;
const TCPI_OPT_USEC_TS = 64;
const infoBytes = new Uint8Array(256);

export function tcpInfoBasics(fd: number): TcpInfoBasics {
  const filled = native.getTcpInfoBytes(fd, infoBytes);
  if (filled <= INFO_WSCALE) throw new Error(`TCP_INFO returned only ${filled} bytes`);
  const options = infoBytes[INFO_OPTIONS]!;
  const scales = infoBytes[INFO_WSCALE]!;
  return {
    state: infoBytes[INFO_STATE]!,
    timestamps: (options & TCPI_OPT_TIMESTAMPS) !== 0,
    sack: (options & TCPI_OPT_SACK) !== 0,
    windowScaling: (options & TCPI_OPT_WSCALE) !== 0,
    sndWscale: scales & 0x0f,
    rcvWscale: scales >> 4,
    usecTimestamps: (options & TCPI_OPT_USEC_TS) !== 0,
  };
}

// ---- repair window -------------------------------------------------------------------------

const windowWords = new Uint32Array(5);

/** TCP_REPAIR_WINDOW, or null on kernels without it (ENOPROTOOPT, before ~4.8). */
export function readWindow(fd: number): RepairWindow | null {
  try {
    native.getRepairWindowInto(fd, windowWords);
  } catch (error) {
    if (isErrnoError(error) && error.code === 'ENOPROTOOPT') return null;
    throw error;
  }
  return { sndWl1: windowWords[0]!, sndWnd: windowWords[1]!, maxWindow: windowWords[2]!, rcvWnd: windowWords[3]!, rcvWup: windowWords[4]! };
}

/** TCP_REPAIR_WINDOW from an image's window, with fields overridden as given. */
export function writeWindow(fd: number, w: RepairWindow, sndWnd = w.sndWnd, rcvWnd = w.rcvWnd, rcvWup = w.rcvWup): void {
  windowWords[0] = w.sndWl1;
  windowWords[1] = sndWnd;
  windowWords[2] = w.maxWindow;
  windowWords[3] = rcvWnd;
  windowWords[4] = rcvWup;
  native.setRepairWindowFrom(fd, windowWords);
}

// ---- TCP_REPAIR_OPTIONS ----------------------------------------------------------------------

// Option kinds the kernel accepts in TCP_REPAIR_OPTIONS (tcp_repair_options_est()).
const TCPOPT_MSS = 2;
const TCPOPT_WINDOW = 3;
const TCPOPT_SACK_PERM = 4;
const TCPOPT_TIMESTAMP = 8;
const optionPairs = new Uint32Array(8);

/** The handshake's options, as lowlevel.setRepairOptions would pass them. */
export function writeRepairOptions(fd: number, o: NegotiatedOptions): void {
  let n = 0;
  optionPairs[n++] = TCPOPT_MSS;
  optionPairs[n++] = o.mss;
  if (o.sndWscale !== null && o.rcvWscale !== null) {
    optionPairs[n++] = TCPOPT_WINDOW;
    optionPairs[n++] = o.sndWscale | (o.rcvWscale << 16);
  }
  if (o.sack) {
    optionPairs[n++] = TCPOPT_SACK_PERM;
    optionPairs[n++] = 0;
  }
  if (o.timestamps) {
    optionPairs[n++] = TCPOPT_TIMESTAMP;
    optionPairs[n++] = 0;
  }
  native.setRepairOptionsRaw(fd, optionPairs, n / 2);
}

// ---- queues and names ----------------------------------------------------------------------

const sizeWords = new Int32Array(3);

/** SIOCINQ, SIOCOUTQ, SIOCOUTQNSD: [received unread, send queue, send queue not yet sent]. */
export function queueSizes(fd: number): Int32Array {
  native.getQueueSizes(fd, sizeWords);
  return sizeWords;
}

/** MSG_PEEK of the selected queue into `into[offset, offset + length)`; nothing to do for 0. */
export function peekInto(fd: number, into: Uint8Array, offset: number, length: number): number {
  return length === 0 ? 0 : native.peekQueueInto(fd, into, offset, length);
}

const queueWords = new Uint32Array(4);

/**
 * The frozen queues in one native call: for the receive then the send queue, select it, read its
 * TCP_QUEUE_SEQ and peek it into `into` (receive at 0, send at `inq`); then select none.
 * Returns [recv seq, send seq, recv bytes copied, send bytes copied] (a reused array).
 */
export function readQueues(fd: number, into: Uint8Array, inq: number, outq: number): Uint32Array {
  native.readQueuesInto(fd, into, inq, outq, queueWords);
  return queueWords;
}

const portWord = new Int32Array(1);

export function localEndpoint(fd: number): { address: string; port: number } {
  const address = native.getSockNameText(fd, portWord);
  return { address, port: portWord[0]! };
}

export function peerEndpoint(fd: number): { address: string; port: number } {
  const address = native.getPeerNameText(fd, portWord);
  return { address, port: portWord[0]! };
}

/** IP_TRANSPARENT or IPV6_TRANSPARENT, as (level, name). */
export function transparentOption(family: Family): [number, number] {
  return family === 4 ? [C.IPPROTO_IP, C.IP_TRANSPARENT!] : [C.IPPROTO_IPV6, C.IPV6_TRANSPARENT!];
}

/** TCP_QUEUE_SEQ of the queue TCP_REPAIR_QUEUE selected last (lowlevel.getQueueSeq selects too). */
export function selectedQueueSeq(fd: number): number {
  return native.getQueueSeq(fd);
}

/** Appends bytes to the queue TCP_REPAIR_QUEUE selected last (lowlevel.refillQueue selects too). */
export function refillSelected(fd: number, bytes: Uint8Array): number {
  return native.refillQueue(fd, bytes);
}
