/**
 * restore(): rebuild a connection from an image and hand it to Node as a net.Socket.
 *
 * The order is the subtle part; each step cites the kernel rule that fixes its place:
 *   1. socket(), then SO_REUSEADDR *before* TCP_REPAIR: repair mode sets a forced reuse that
 *      a later SO_REUSEADDR would overwrite, and bind would then fail (EADDRINUSE) while a
 *      listener holds the port.
 *   2. TCP_REPAIR on, IP_TRANSPARENT if the address is not (yet) ours (freebind alone lets
 *      bind pass but a repair-mode connect fails with ENETUNREACH), bind to the local address.
 *      A receiver may have done socket(), the freeze filter and IP_TRANSPARENT before the
 *      source froze anything (prepareFrozenSocket): none of them depends on the image.
 *   3. TCP_QUEUE_SEQ for the receive then the send queue, at the start of the bytes to refill:
 *      the kernel accepts it only while the socket is closed (EPERM after connect).
 *   4. TCP_MAXSEG: a repair-mode connect computes the segment size from the default 536 and
 *      TCP_REPAIR_OPTIONS does not recompute it; without this the socket sends 524-byte segments.
 *   5. connect(): in repair mode no SYN is sent and the socket is ESTABLISHED at once.
 *   6. TCP_REPAIR_OPTIONS (MSS, window scales, SACK, timestamps): refused once queue data was
 *      sent on newer kernels, so before any refill. Then TCP_TIMESTAMP.
 *   7. Buffer sizes: refills are charged to the socket's buffers (ENOBUFS otherwise).
 *   8. Refill the receive queue, then the sent-but-unacknowledged part of the send queue.
 *   9. TCP_REPAIR_WINDOW after the receive refill: the kernel checks rcv_wup <= rcv_nxt.
 *  10. TCP_REPAIR off (window probe: the peer answers at once) or -1 (silent, ~4.18+).
 *      Leaving repair resets SO_REUSEADDR: set the application's value again.
 *  11. Half-closed: for CLOSE_WAIT, shutdown(SHUT_RD) so the socket delivers its data then EOF.
 *  12. Adopt the fd in a net.Socket, and write the unsent bytes normally: written through the
 *      repair send queue they would count as sent and wait for a retransmission timeout.
 *
 * Without a kernel feature (src/features.ts: missing, or forced off with TCP_REPAIR_DISABLE):
 *   - repairWindow: step 9 is skipped; the kernel starts from the windows a repair-mode connect
 *     sets up and takes the peer's from its next segment (the window probe of step 10 asks for one).
 *   - transparent: step 2 binds without it; an address not on this host is refused.
 *   - timestampSet (image with timestamps), repairOptions, queueRefill (image with queued bytes),
 *     ipv6 (IPv6 image), freezeFilter (quiet restore), tcpRepair: refused before socket() by
 *     refuseUnavailable(), or when the kernel refuses the call, with a FeatureUnavailableError.
 *   - freezeFilter, same-process hand-over: no guard (see connectTakingOver).
 *   - halfClosedRepair and repairOffNoWindowProbe are not needed here: a CLOSE_WAIT image is
 *     rebuilt ESTABLISHED (step 11), and a quiet copy stays in repair mode until activate().
 */
import type net from 'node:net';
import * as ll from './lowlevel.js';
import * as batch from './batch.js';
import { C } from './batch.js';
import { SocketStateError, isErrnoError } from './errors.js';
import { isUnknownOption, noteMissing, off, unavailable } from './features.js';
import { validateImage, type SocketImage } from './image.js';
import { adoptFd, startReading, stopReading } from './node-socket.js';
import { addSocketOptionWrites, applyCongestion } from './socket-options.js';
import { destroyHold } from './checkpoint.js';
import { takeHold, tupleKey, hasHold, holdsAny } from './source-holds.js';
import { socketFd } from './socket-fd.js';

/** Options of {@link restore}. */
export interface RestoreOptions {
  /**
   * Set IP_TRANSPARENT so the socket can use a local address this host does not own yet
   * (host-to-host moves, before the service address arrives). Needs CAP_NET_ADMIN.
   */
  transparent?: boolean;
  /**
   * Keep the restored socket frozen until activate(): drop-all filter, repair mode, not read,
   * unsent bytes and application writes held. For moves where the address arrives after the
   * restore: until activated the copy neither accepts nor acknowledges anything, and if it is
   * discarded (or its process dies) it closes in repair mode, sending neither FIN nor RST.
   */
  quiet?: boolean;
}

/** The largest TCP_MAXSEG the kernel accepts (EINVAL above). */
const MAX_USER_MSS = 32767;
/** Headroom for skb overhead when forcing buffers to hold refilled queues. */
const BUFFER_SLACK = 256 * 1024;

/** Sockets restored quietly, with what activate() must still do for them. */
const quietSockets = new WeakMap<net.Socket, { reuseAddress: boolean; finReceived: boolean }>();

/**
 * Rebuilds the connection an image describes and returns it as a connected net.Socket (no
 * 'connect' event: it is connected already). Unsent bytes are written normally. In the process
 * that still holds the frozen source, it takes over from it without a gap. Needs CAP_NET_ADMIN;
 * an image for a local address this host does not own needs `transparent: true`.
 */
export function restore(image: SocketImage, options: RestoreOptions = {}): net.Socket {
  validateImage(image);
  const fd = restoreFd(image, options);
  const socket = adoptFd(fd, image.node);
  if (options.quiet) {
    // Still in repair mode, where a read fails with EPERM and Node would destroy the socket.
    stopReading(socket);
    socket.cork();
    quietSockets.set(socket, { reuseAddress: image.socketOptions.reuseAddress, finReceived: image.state === 'CLOSE_WAIT' });
  }
  if (image.unsent.length > 0) socket.write(image.unsent);
  return socket;
}

/**
 * socket() (or a prepared one), then the kernel state; on failure the fd is closed (in repair
 * mode: silently).
 */
function restoreFd(image: SocketImage, options: RestoreOptions, prepared?: PreparedSocket): number {
  let fd: number;
  try {
    if (prepared && (prepared.family !== image.family || prepared.transparent !== wantsTransparent(options) || !options.quiet)) {
      throw new TypeError('restore: the prepared socket does not match the image (family) or the options (transparent, quiet)');
    }
    refuseUnavailable(image, options);
    fd = prepared ? prepared.fd : createSocketOrExplain(image);
  } catch (error) {
    if (prepared) discardPrepared(prepared); // handed over to this restore: it must not leak
    throw error;
  }
  try {
    restoreKernelState(fd, image, options, prepared !== undefined);
  } catch (error) {
    ll.closeFd(fd); // still in repair mode: nothing is sent
    throw explainRefusal(error);
  }
  return fd;
}

/**
 * A connection restored quietly but not yet given to Node: only the fd, frozen (repair mode,
 * drop-all filter). For a receiver that activates many at once: building a net.Socket costs
 * more than the kernel calls of a restore, and this way it happens after activation, outside
 * the freeze. Internal (src/migrate/receiver.ts).
 */
export interface FrozenRestore {
  fd: number;
  image: SocketImage;
}

/**
 * restore(image, { ...options, quiet: true }) without the net.Socket. The image must come from
 * decodeImage, which validated it already (once per image is enough). `prepared`: a socket from
 * prepareFrozenSocket() with the same family and options, used instead of a new one (closed
 * with the rest on failure).
 */
export function restoreFrozen(image: SocketImage, options: Omit<RestoreOptions, 'quiet'> = {}, prepared?: PreparedSocket): FrozenRestore {
  return { fd: restoreFd(image, { ...options, quiet: true }, prepared), image };
}

/**
 * A socket readied for a quiet restore before its image exists: socket(), the freeze filter and
 * IP_TRANSPARENT depend only on the family, and may come before SO_REUSEADDR and TCP_REPAIR
 * (steps 1-2). A receiver makes these when a source announces its connections, before the
 * source freezes any, which takes their cost out of the freeze. Internal (src/migrate/).
 */
export interface PreparedSocket {
  fd: number;
  family: SocketImage['family'];
  /** IP_TRANSPARENT is set (the restore asked for it and the feature is available). */
  transparent: boolean;
}

/** Makes a PreparedSocket; throws (nothing left open) if the kernel refuses a step. */
export function prepareFrozenSocket(family: SocketImage['family'], options: Pick<RestoreOptions, 'transparent'> = {}): PreparedSocket {
  if (off.freezeFilter) throw freezeFilterUnavailable();
  const fd = ll.createSocket(family);
  try {
    ll.attachFreezeFilter(fd);
    const transparent = wantsTransparent(options);
    if (transparent) {
      const [level, name] = batch.transparentOption(family);
      batch.intWrites().set(level, name, 1).apply(fd);
    }
    return { fd, family, transparent };
  } catch (error) {
    ll.closeFd(fd);
    throw error;
  }
}

/** Closes a PreparedSocket never used (it was never connected: nothing is sent). */
export function discardPrepared(prepared: PreparedSocket): void {
  ll.closeFd(prepared.fd);
}

/** IP_TRANSPARENT is set when asked for and not unavailable (see bindOrExplain otherwise). */
function wantsTransparent(options: Pick<RestoreOptions, 'transparent'>): boolean {
  return options.transparent === true && !off.transparent;
}

/** activate() of a FrozenRestore: the kernel side only (no Node object exists yet). */
export function activateFrozen(frozen: FrozenRestore): void {
  activateFd(frozen.fd, frozen.image.socketOptions.reuseAddress, frozen.image.state === 'CLOSE_WAIT');
}

/** After activateFrozen: the net.Socket, with the image's unsent bytes written. */
export function adoptFrozen(frozen: FrozenRestore): net.Socket {
  const socket = adoptFd(frozen.fd, frozen.image.node);
  if (frozen.image.unsent.length > 0) socket.write(frozen.image.unsent);
  return socket;
}

/** Discards a FrozenRestore never activated: closed in repair mode, it sends neither FIN nor RST. */
export function discardFrozen(frozen: FrozenRestore): void {
  ll.closeFd(frozen.fd);
}

/**
 * Ends the quiet period of a socket restored with `quiet: true`: sends a window probe so the
 * peer ACKs to this host at once, then releases the held unsent bytes and application writes.
 */
export function activate(socket: net.Socket): void {
  const quiet = quietSockets.get(socket);
  if (!quiet) return;
  quietSockets.delete(socket);
  activateFd(socketFd(socket), quiet.reuseAddress, quiet.finReceived);
  startReading(socket);
  socket.uncork();
}

function activateFd(fd: number, reuseAddress: boolean, finReceived: boolean): void {
  // Filter off first: the peer's answer to the probe must reach TCP.
  ll.detachFreezeFilter(fd);
  // Out of repair with a window probe; leaving repair resets SO_REUSEADDR.
  batch.intWrites().set(C.SOL_TCP, C.TCP_REPAIR!, 0).set(C.SOL_SOCKET, C.SO_REUSEADDR!, reuseAddress).apply(fd);
  if (finReceived) ll.shutdown(fd, 'read');
}

/** Refusals decided from the image alone, before any syscall (each check is a property read). */
function refuseUnavailable(image: SocketImage, options: RestoreOptions): void {
  if (off.tcpRepair) throw unavailable('tcpRepair', 'restore needs TCP_REPAIR', 'Nothing can be restored without it.');
  if (off.repairOptions) throw unavailable('repairOptions', 'restore needs TCP_REPAIR_OPTIONS to set the MSS, window scales, SACK and timestamps', 'Restore on a kernel that has it.');
  if (off.ipv6 && image.family === 6) {
    throw unavailable('ipv6', `the image is an IPv6 connection (${image.local.address})`, 'Restore it on a host with IPv6; to get IPv4 images, listen on an IPv4 address (not ::).');
  }
  if (off.timestampSet && image.options.timestamps) {
    throw unavailable('timestampSet', 'the connection negotiated TCP timestamps, and restoring it without its timestamp clock would make the peer drop segments whose clock went back (PAWS)', 'Restore it on a kernel with TCP_TIMESTAMP set, or checkpoint connections made without timestamps (net.ipv4.tcp_timestamps=0).');
  }
  if (off.queueRefill && image.recvQueue.length + image.sentUnacked.length > 0) {
    throw unavailable('queueRefill', `the image has ${image.recvQueue.length} received and ${image.sentUnacked.length} sent-unacknowledged bytes to put back in repair mode`, 'Restore it on a kernel that can refill queues, or checkpoint when the queues are empty.');
  }
  if (off.freezeFilter && options.quiet) throw freezeFilterUnavailable();
}

function freezeFilterUnavailable(): Error {
  return unavailable('freezeFilter', 'a quiet restore keeps the copy behind a drop-all socket filter until activate()', 'Restore without quiet once the address has moved here.');
}

function createSocketOrExplain(image: SocketImage): number {
  try {
    return ll.createSocket(image.family);
  } catch (error) {
    if (image.family === 6 && isErrnoError(error) && error.code === 'EAFNOSUPPORT') {
      throw unavailable('ipv6', `the image is an IPv6 connection (${image.local.address})`, 'Restore it on a host with IPv6.', error);
    }
    throw error;
  }
}

// TCP_REPAIR_QUEUE values.
const NO_QUEUE = 0;
const RECV_QUEUE = 1;
const SEND_QUEUE = 2;

/**
 * The kernel calls of a restore, in the order above. Integer options between two other calls go
 * to the kernel together (src/batch.ts): the steps' numbers match the list at the top.
 */
function restoreKernelState(fd: number, image: SocketImage, options: RestoreOptions, prepared: boolean): void {
  const { family, local } = image;
  const reuse = image.socketOptions.reuseAddress;
  const finReceived = image.state === 'CLOSE_WAIT';
  // The kernel's rcv_nxt counts the peer's FIN; restored as ESTABLISHED, the socket must expect
  // the byte before it (the FIN is replayed locally by shutdown(SHUT_RD) below).
  const recvEnd = (image.recvSeq - (finReceived ? 1 : 0)) >>> 0;
  const w = batch.intWrites();

  // 1-2: reuse, repair, address. A quiet copy is filtered from the start: nothing the peer
  // sends may change it before it is activated. A prepared socket has its filter and
  // IP_TRANSPARENT already (prepareFrozenSocket).
  if (options.quiet && !prepared) ll.attachFreezeFilter(fd);
  w.set(C.SOL_SOCKET, C.SO_REUSEADDR!, reuse).set(C.SOL_TCP, C.TCP_REPAIR!, 1);
  // Without IP_TRANSPARENT the bind works only for an address this host already has.
  const transparent = wantsTransparent(options);
  if (transparent && !prepared) {
    const [level, name] = batch.transparentOption(family);
    w.set(level, name, 1);
  }
  w.apply(fd);
  bindOrExplain(fd, image, options.transparent === true && !transparent);
  // 3: where the refilled bytes start in sequence space. 4: segment size before connect.
  w.set(C.SOL_TCP, C.TCP_REPAIR_QUEUE!, RECV_QUEUE)
    .set(C.SOL_TCP, C.TCP_QUEUE_SEQ!, (recvEnd - image.recvQueue.length) >>> 0)
    .set(C.SOL_TCP, C.TCP_REPAIR_QUEUE!, SEND_QUEUE)
    .set(C.SOL_TCP, C.TCP_QUEUE_SEQ!, (image.sendSeq - image.unsent.length - image.sentUnacked.length) >>> 0)
    .set(C.SOL_TCP, C.TCP_MAXSEG!, Math.min(image.options.mss, MAX_USER_MSS));
  addSocketOptionWrites(w, family, image.socketOptions);
  w.apply(fd);
  applyCongestion(fd, image.socketOptions.congestion);
  // 5: connect, handing over from a frozen source this process still holds.
  connectTakingOver(fd, image);
  // 6: handshake options, then the timestamp clock.
  batch.writeRepairOptions(fd, image.options);
  if (image.options.timestamps) w.set(C.SOL_TCP, C.TCP_TIMESTAMP!, timestampToSet(image));
  // 7-8: buffers, then queues.
  addBufferWrites(w, image);
  if (image.recvQueue.length > 0) {
    w.set(C.SOL_TCP, C.TCP_REPAIR_QUEUE!, RECV_QUEUE).apply(fd);
    batch.refillSelected(fd, image.recvQueue);
  }
  if (image.sentUnacked.length > 0) {
    w.set(C.SOL_TCP, C.TCP_REPAIR_QUEUE!, SEND_QUEUE).apply(fd);
    batch.refillSelected(fd, image.sentUnacked);
  }
  w.set(C.SOL_TCP, C.TCP_REPAIR_QUEUE!, NO_QUEUE).apply(fd);
  // 9: window, corrected for a received FIN. Without one (no repairWindow where the image was
  // taken or here) the kernel derives it: snd_wnd from the peer's answer to the probe of step 10.
  const win = off.repairWindow ? null : image.window;
  if (win) {
    try {
      if (finReceived) batch.writeWindow(fd, win, win.sndWnd, win.rcvWnd + 1, (win.rcvWup - 1) >>> 0);
      else batch.writeWindow(fd, win);
    } catch (error) {
      if (!isUnknownOption(error)) throw error;
      noteMissing('repairWindow', error as Error); // later restores skip the call
    }
  }
  // 10: out of repair (a quiet copy stays in until activate()); leaving it resets SO_REUSEADDR.
  if (options.quiet) return;
  w.set(C.SOL_TCP, C.TCP_REPAIR!, 0).set(C.SOL_SOCKET, C.SO_REUSEADDR!, reuse).apply(fd);
  // 11: replay the peer's FIN locally.
  if (finReceived) ll.shutdown(fd, 'read');
}

/** A kernel without a feature the image needs refuses its option (ENOPROTOOPT): say which. */
function explainRefusal(error: unknown): unknown {
  if (!isUnknownOption(error) || !isErrnoError(error)) return error;
  switch (error.syscall) {
    case 'setsockopt(TCP_REPAIR)':
      return unavailable('tcpRepair', 'restore needs TCP_REPAIR', 'This kernel has no TCP_REPAIR (Linux 3.5+ with CONFIG_CHECKPOINT_RESTORE).', error);
    case 'setsockopt(TCP_REPAIR_OPTIONS)':
      return unavailable('repairOptions', 'restore needs TCP_REPAIR_OPTIONS', 'Restore on a kernel that has it.', error);
    case 'setsockopt(TCP_TIMESTAMP)':
      return unavailable('timestampSet', 'the connection negotiated TCP timestamps and TCP_TIMESTAMP cannot be set', 'Restore it on a kernel that can set it.', error);
    default:
      return error;
  }
}

/** bind(); `wantedTransparent`: the caller asked for IP_TRANSPARENT and it is unavailable. */
function bindOrExplain(fd: number, image: SocketImage, wantedTransparent: boolean): void {
  try {
    ll.bind(fd, image.family, image.local.address, image.local.port);
  } catch (error) {
    if (wantedTransparent && isErrnoError(error) && error.code === 'EADDRNOTAVAIL') {
      throw unavailable('transparent', `${image.local.address} is not an address of this host, and binding it before it arrives needs IP_TRANSPARENT`, 'Add the address to this host before restoring.');
    }
    throw error;
  }
}

/**
 * The TCP_TIMESTAMP value to write. Since 6.7 the kernel takes its lowest bit as "microsecond
 * timestamps" (and reads it back that way), while an image taken on an older kernel has a plain
 * millisecond clock there: written as is, an odd one turned the restored connection's clock to
 * microseconds (seen moving 6.1 -> 6.12 and 6.1 -> 6.18: the clock ran 1000 times fast, so after
 * ~36 minutes idle the peer's PAWS check would take the next segment for an old one and drop it).
 * So a millisecond clock is written even, rounded up: one millisecond ahead never trips the
 * peer's PAWS check, and older kernels ignore the bit's meaning anyway. A microsecond clock keeps
 * the bit set.
 */
function timestampToSet(image: SocketImage): number {
  const ts = image.timestamp >>> 0;
  if (image.options.usecTimestamps) return (ts | 1) >>> 0;
  return (ts + (ts & 1)) >>> 0;
}

function addBufferWrites(w: batch.IntWrites, image: SocketImage): void {
  const sendBytes = image.sentUnacked.length + image.unsent.length;
  if (sendBytes > 0) {
    // The kernel doubles the value set; what was read back is already doubled.
    const wanted = Math.max(image.socketOptions.sendBuffer / 2, sendBytes * 2 + BUFFER_SLACK);
    w.set(C.SOL_SOCKET, C.SO_SNDBUFFORCE!, Math.ceil(wanted));
  }
  if (image.recvQueue.length > 0) {
    const wanted = Math.max(image.socketOptions.receiveBuffer / 2, image.recvQueue.length * 2 + BUFFER_SLACK);
    w.set(C.SOL_SOCKET, C.SO_RCVBUFFORCE!, Math.ceil(wanted));
  }
}

/**
 * The kernel refuses a second socket for a 4-tuple (EADDRNOTAVAIL) while the frozen source is
 * open, and closing the source first leaves a gap in which a peer segment meets no socket and
 * draws an RST. A listener on the same local address and port (forced reuse in repair mode)
 * behind a drop-all filter covers the gap: segments arriving in it vanish silently.
 * Without freezeFilter there is no guard: the checkpoint then had lock: 'none', and the external
 * lock the caller keeps on the connection drops those segments instead.
 */
function connectTakingOver(fd: number, image: SocketImage): void {
  // A receiving process usually holds nothing: no need to build the key then.
  const key = holdsAny() ? tupleKey(image.local, image.peer) : null;
  if (key === null || !hasHold(key)) {
    connectOrExplain(fd, image);
    return;
  }
  if (off.freezeFilter) {
    destroyHold(takeHold(key)!);
    connectOrExplain(fd, image);
    return;
  }
  const guard = ll.createSocket(image.family);
  try {
    ll.repairOn(guard);
    ll.bind(guard, image.family, image.local.address, image.local.port);
    ll.attachFreezeFilter(guard);
    ll.listen(guard, 1);
    destroyHold(takeHold(key)!);
    connectOrExplain(fd, image);
  } finally {
    ll.closeFd(guard);
  }
}

function connectOrExplain(fd: number, image: SocketImage): void {
  try {
    ll.connect(fd, image.family, image.peer.address, image.peer.port);
  } catch (error) {
    if (isErrnoError(error) && error.code === 'EADDRNOTAVAIL') {
      throw new SocketStateError(
        'ERR_TUPLE_IN_USE',
        `cannot restore ${image.local.address}:${image.local.port} <-> ${image.peer.address}:${image.peer.port}: another socket (the frozen source in another process?) still holds this connection; release it first (${error.message})`,
      );
    }
    throw error;
  }
}
