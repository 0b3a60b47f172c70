/**
 * checkpoint(): freeze a live net.Socket and read everything needed to rebuild it.
 * release(): let go of the frozen source once the connection lives elsewhere.
 * resume(): roll back: the original socket carries on as if nothing happened.
 *
 * The order of the freeze (each step relies on the previous one):
 *   1. flush Node's pending writes into the kernel (they become "unsent" kernel bytes);
 *   2. cork the net.Socket: application writes made from now on wait in Node;
 *   3. stop libuv reading, then copy Node's unconsumed read buffer: in repair mode a plain
 *      read fails with EPERM and Node would destroy the socket;
 *   4. attach the drop-all filter: no incoming segment (ACK or data) can change the state
 *      while it is read; without it, MSG_PEEK of the send queue races with incoming ACKs;
 *   4b. wait for one RCU grace period (src/freeze-lock.ts): a segment that passed the filter on
 *      another CPU just before it went on is processed by then, or waits in the backlog that
 *      step 5 drains; read before that, rcv_nxt would miss bytes the peer sees acknowledged
 *      (lockForCheckpoint() does steps 4 and 4b for a whole batch with one wait);
 *   5. TCP_REPAIR on (its lock_sock/release_sock drains the backlog): queues, sequence numbers
 *      and windows become readable;
 *   6. read the window, then close the send window (snd_wnd = 0): repair mode alone does not
 *      stop the kernel transmitting data already queued, and a peer that ACKs bytes the image
 *      calls "unsent" would stall the restored copy;
 *   7. read sequences, queues (peek), options, timestamp, socket options.
 *
 * Without a kernel feature (src/features.ts: missing, or forced off with TCP_REPAIR_DISABLE) the
 * fallbacks are: no repairWindow: no window read (image.window null), step 6 skipped; no
 * freezeFilter: lock 'filter' refused, lock 'none' works; no filterGracePeriod: step 4b waits a
 * fixed time; no queuePeek: sockets with kernel-queued
 * bytes refused; no halfClosedRepair: CLOSE_WAIT refused; no tcpRepair: refused. Each refusal is a
 * FeatureUnavailableError thrown before the freeze or rolled back by thaw(): the socket carries on.
 */
import type net from 'node:net';
import * as ll from './lowlevel.js';
import * as batch from './batch.js';
import { C } from './batch.js';
import { SocketStateError, isErrnoError } from './errors.js';
import { isUnknownOption, noteMissing, off, unavailable } from './features.js';
import { hasNetAdmin } from './repair-helper.js';
import { IMAGE_VERSION, type ImageState, type SocketImage } from './image.js';
import { socketFd } from './socket-fd.js';
import { tcpFamilyOf } from './socket-kind.js';
import { takeOrLock } from './freeze-lock.js';
import { assertMovable, bufferedReadBytes, flushPendingWrites, pendingWriteBytes, readNodeState, startReading, stopReading } from './node-socket.js';
import { socketOptionSpec, socketOptionsFrom } from './socket-options.js';
import { addHold, takeHold, tupleKey, type SourceHold } from './source-holds.js';
import type { Family, RepairWindow } from './native-types.js';

/** Options of {@link checkpoint}. */
export interface CheckpointOptions {
  /** Longest wait (ms) for Node's pending writes to reach the kernel. Default 2000. */
  flushTimeoutMs?: number;
  /**
   * Freeze lock. 'filter' (default): a per-socket drop-all BPF filter. 'none': the caller
   * already stops segments reaching the socket (e.g. an nftables rule) and has waited for the
   * segments already past it to settle (`lowlevel.waitForFilterGracePeriod()` after adding the
   * rule). A socket locked by lockForCheckpoint() keeps that lock whatever this says.
   */
  lock?: 'filter' | 'none';
  /** Close the send window while frozen (default true). Disable only for experiments. */
  closeSendWindow?: boolean;
}

const MOVABLE_STATES: Partial<Record<number, ImageState>> = {
  [ll.TcpState.ESTABLISHED]: 'ESTABLISHED',
  [ll.TcpState.CLOSE_WAIT]: 'CLOSE_WAIT',
};

/** Read before the freeze: what the socket is, and SO_REUSEADDR (repair mode forces it on). */
const BEFORE_FREEZE = batch.intSpec([
  [C.SOL_SOCKET, C.SO_DOMAIN!],
  [C.SOL_SOCKET, C.SO_TYPE!],
  [C.SOL_SOCKET, C.SO_PROTOCOL!],
  [C.SOL_SOCKET, C.SO_REUSEADDR!],
]);
const beforeFreeze = new Int32Array(4);

/**
 * Read frozen, in one call: the MSS clamp (TCP_MAXSEG reads it in repair mode), the timestamp
 * clock when timestamps were negotiated, then the application's socket options.
 */
function frozenSpec(family: Family, timestamps: boolean): Int32Array {
  const head: Array<[number, number]> = [[C.SOL_TCP, C.TCP_MAXSEG!]];
  if (timestamps) head.push([C.SOL_TCP, C.TCP_TIMESTAMP!]);
  return batch.intSpec([...head, ...socketOptionSpec(family)]);
}
const FROZEN = {
  4: { true: frozenSpec(4, true), false: frozenSpec(4, false) },
  6: { true: frozenSpec(6, true), false: frozenSpec(6, false) },
} as const;
const frozenValues = new Int32Array(16);
/** Empty payloads share one zero-length Buffer (nothing can be written into it). */
const NO_BYTES = Buffer.alloc(0);

/**
 * Freezes a live net.Socket and reads everything needed to rebuild its connection: sequence
 * numbers, queues (Node's unread and unwritten bytes included), negotiated options, windows,
 * socket options. The socket stays frozen (nothing is sent or acknowledged) until {@link release}
 * (the connection lives elsewhere now), {@link resume} (roll back) or a {@link restore} of the image
 * in this process. Needs CAP_NET_ADMIN. On failure the socket is left as it was and the error is a
 * {@link SocketStateError} or an {@link ErrnoError}.
 */
export async function checkpoint(socket: net.Socket, options: CheckpointOptions = {}): Promise<SocketImage> {
  assertMovable(socket);
  const fd = socketFd(socket);
  const kind = batch.readInts(fd, BEFORE_FREEZE, beforeFreeze);
  const family = tcpFamilyOf(fd, { domain: kind[0]!, type: kind[1]!, protocol: kind[2]! });
  const reuseAddress = kind[3]! !== 0;
  const filtered = options.lock !== 'none';
  refuseUnavailable(fd, filtered);
  if (pendingWriteBytes(socket) > 0) {
    await flushPendingWrites(socket, options.flushTimeoutMs ?? 2000);
    assertMovable(socket);
  }

  let inRepair = false;
  let filterAttached = false;
  let window: RepairWindow | null = null;
  socket.cork();
  try {
    stopReading(socket);
    const nodeBuffered = bufferedReadBytes(socket);
    // The lock's order (src/freeze-lock.ts): filter on, one grace period so that no segment that
    // passed the filter before is still on its way to TCP, then repair on, whose lock_sock /
    // release_sock drains the backlog, and only then the reads.
    filterAttached = takeOrLock(socket, fd, filtered);
    repairOnOrExplain(fd);
    inRepair = true;
    const image = readFrozenState(fd, family, reuseAddress, nodeBuffered, socket);
    window = image.window;
    if (window && options.closeSendWindow !== false) batch.writeWindow(fd, window, 0);
    addHold(tupleKey(image.local, image.peer), { socket, fd, window, reuseAddress, filtered: filterAttached });
    return image;
  } catch (error) {
    thaw({ socket, fd, window, reuseAddress, filtered: filterAttached }, inRepair);
    throw error;
  }
}

/** Refusals that need no freeze: the socket is not touched (checks are property reads). */
function refuseUnavailable(fd: number, filtered: boolean): void {
  if (off.tcpRepair) throw unavailable('tcpRepair', 'checkpoint needs TCP_REPAIR', 'Nothing can be checkpointed without it.');
  if (filtered && off.freezeFilter) {
    throw unavailable('freezeFilter', "checkpoint with lock: 'filter' needs the drop-all socket filter", "Stop segments reaching the socket another way (e.g. an nftables rule for the connection) and checkpoint with lock: 'none'.");
  }
  // Only when forced off: a kernel without it refuses repair mode itself (repairOnOrExplain).
  if (off.halfClosedRepair && batch.tcpInfoBasics(fd).state === ll.TcpState.CLOSE_WAIT) throw halfClosedUnavailable();
}

function halfClosedUnavailable(cause?: unknown): Error {
  return unavailable('halfClosedRepair', 'the socket is CLOSE_WAIT (the peer sent FIN) and repair of half-closed sockets needs Linux 4.10+', 'Finish the connection where it is, or move it before the peer closes its side.', cause);
}

/** TCP_REPAIR on; a kernel without half-closed repair (before 4.10) refuses CLOSE_WAIT with EPERM. */
function repairOnOrExplain(fd: number): void {
  try {
    ll.repairOn(fd);
  } catch (error) {
    if (isErrnoError(error) && error.code === 'EPERM' && batch.tcpInfoBasics(fd).state === ll.TcpState.CLOSE_WAIT && hasNetAdmin()) throw halfClosedUnavailable(error);
    if (isUnknownOption(error)) throw unavailable('tcpRepair', 'checkpoint needs TCP_REPAIR', 'This kernel has no TCP_REPAIR (Linux 3.5+ with CONFIG_CHECKPOINT_RESTORE).', error);
    throw error;
  }
}

function readFrozenState(fd: number, family: Family, reuseAddress: boolean, nodeBuffered: Buffer, socket: net.Socket): SocketImage {
  const info = batch.tcpInfoBasics(fd);
  const state = MOVABLE_STATES[info.state];
  if (state === undefined) {
    throw new SocketStateError('ERR_STATE_UNSUPPORTED', `TCP state ${ll.tcpStateName(info.state)} cannot be checkpointed (supported: ESTABLISHED, CLOSE_WAIT)`);
  }
  // Also checked before the freeze; this catches a FIN that arrived while writes were flushed.
  if (state === 'CLOSE_WAIT' && off.halfClosedRepair) throw halfClosedUnavailable();
  // TCP_REPAIR_WINDOW exists since ~4.8; without it the image has no window and the restore
  // lets the kernel derive one.
  const window = off.repairWindow ? null : readWindowOrNote(fd);
  const [inq, outq, notSent] = batch.queueSizes(fd) as unknown as [number, number, number];
  if (off.queuePeek && inq + outq > 0) {
    throw unavailable('queuePeek', `the socket has ${inq} received and ${outq} send-queue bytes in the kernel, read only with MSG_PEEK in repair mode`, 'Checkpoint it when its queues are empty (the application read everything, the peer acknowledged everything).');
  }
  // Both queues in one allocation; the image's three payloads are views of it.
  const queues = inq + outq > 0 ? Buffer.allocUnsafe(inq + outq) : NO_BYTES;
  // Sequence numbers and both queues (select, TCP_QUEUE_SEQ, peek; then no queue): one crossing.
  const q = batch.readQueues(fd, queues, inq, outq);
  const recvSeq = q[0]!;
  const sendSeq = q[1]!;
  const recvGot = q[2]!;
  const sendGot = q[3]!;
  if (recvGot !== inq || sendGot !== outq) {
    throw new SocketStateError('ERR_QUEUE_CHANGED', `queues changed while frozen (recv ${recvGot}/${inq}, send ${sendGot}/${outq}): is the freeze lock in place?`);
  }
  const sentEnd = inq + outq - notSent;
  const local = batch.localEndpoint(fd);
  const peer = batch.peerEndpoint(fd);
  const values = batch.readInts(fd, FROZEN[family][info.timestamps ? 'true' : 'false'], frozenValues);
  const optionsAt = info.timestamps ? 2 : 1;
  const kernelRecv = inq > 0 ? queues.subarray(0, inq) : NO_BYTES;
  return {
    version: IMAGE_VERSION,
    family,
    local,
    peer,
    state,
    recvSeq,
    sendSeq,
    recvQueue: nodeBuffered.length > 0 ? Buffer.concat([nodeBuffered, kernelRecv]) : kernelRecv,
    sentUnacked: sentEnd > inq ? queues.subarray(inq, sentEnd) : NO_BYTES,
    unsent: notSent > 0 ? queues.subarray(sentEnd) : NO_BYTES,
    options: {
      mss: values[0]!,
      sack: info.sack,
      timestamps: info.timestamps,
      sndWscale: info.windowScaling ? info.sndWscale : null,
      rcvWscale: info.windowScaling ? info.rcvWscale : null,
      ...(info.usecTimestamps ? { usecTimestamps: true } : {}),
    },
    timestamp: info.timestamps ? values[1]! >>> 0 : 0,
    window,
    socketOptions: socketOptionsFrom(values, optionsAt, reuseAddress, ll.getCongestion(fd)),
    node: readNodeState(socket),
    takenAt: Date.now(),
  };
}

function readWindowOrNote(fd: number): RepairWindow | null {
  const window = batch.readWindow(fd);
  if (window === null) noteMissing('repairWindow', Object.assign(new Error('getsockopt(TCP_REPAIR_WINDOW) ENOPROTOOPT'), { code: 'ENOPROTOOPT' }));
  return window;
}

/** Puts a frozen socket back to work (the rollback of checkpoint). */
function thaw(hold: SourceHold, inRepair: boolean): void {
  const { socket, fd } = hold;
  if (inRepair) {
    ll.selectQueue(fd, 'none');
    if (hold.window) ll.setRepairWindow(fd, hold.window);
    // Leaving repair with a window probe makes the peer answer at once with its current ACK,
    // so whatever it sent during the freeze is retransmitted without waiting for its RTO.
    ll.repairOff(fd);
    // Leaving repair mode resets SO_REUSEADDR: give the application its value back.
    ll.setOption(fd, 'SO_REUSEADDR', hold.reuseAddress);
  }
  if (hold.filtered) ll.detachFreezeFilter(fd);
  startReading(socket);
  socket.uncork();
}

function imageKey(image: SocketImage): string {
  return tupleKey(image.local, image.peer);
}

/**
 * Rolls a checkpoint back: the original net.Socket carries on (repair off, lock off, reading
 * again, corked writes flushed). Returns that socket. Throws if this process holds no frozen
 * socket for the image (it was released or restored).
 */
export function resume(image: SocketImage): net.Socket {
  const hold = takeHold(imageKey(image));
  if (!hold) throw new SocketStateError('ERR_NOT_HELD', 'this process holds no frozen socket for the image (already released or restored)');
  thaw(hold, true);
  return hold.socket;
}

/**
 * Lets go of the frozen source socket. It is still in repair mode, so closing it sends neither
 * FIN nor RST. A no-op when nothing is held (already released, or restored on this host).
 */
export function release(image: SocketImage): void {
  const hold = takeHold(imageKey(image));
  if (hold) destroyHold(hold);
}

export function destroyHold(hold: SourceHold): void {
  // destroy() is a plain close(2): with the fd in repair mode nothing goes on the wire.
  hold.socket.destroy();
}
