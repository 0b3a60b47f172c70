/**
 * migrate(): the source end of a host-to-host move. The order follows what gave zero resets:
 *   0. the receiver readies one socket per connection (socket(), freeze filter, IP_TRANSPARENT)
 *      before anything is frozen: the part of a restore that needs no image stays out of the freeze;
 *   1. lock every socket (freeze filters, then one RCU grace period for the batch), then
 *      checkpoint each, streaming each image to the receiver as it is taken;
 *   2. the receiver restores each quietly (no window probe, writes held) and confirms it;
 *   3. once every image is confirmed, the service address moves (`handover`): before that,
 *      segments must still reach this host, where the frozen sockets drop them silently;
 *   4. ACTIVATE: the receiver probes each socket (the peer ACKs to the new host at once) and
 *      releases held writes; a probe sent before the address moved would be answered to us;
 *   5. only then are the frozen sockets here released: released earlier, they could answer a
 *      late segment with an RST.
 * If the answer to ACTIVATE does not come, the receiver may have activated anyway (the answer was
 * what got lost): with a handback, the source asks on a new channel (STATUS) and resumes its
 * copies only if the receiver says it did not activate, which also stops it from doing so later.
 * Anything that fails before the address moves rolls back: the receiver discards its copies
 * silently and the sockets resume here, untouched.
 */
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type net from 'node:net';
import { checkpoint, release, resume, type CheckpointOptions } from '../checkpoint.js';
import { lockForCheckpoint, unlockUnused } from '../freeze-lock.js';
import { encodeImage, type SocketImage } from '../image.js';
import { connectChannel, DEFAULT_IDENTITY, keyBytes, yieldToEventLoop, type Channel } from './channel.js';
import { encodeImageFrame, encodeJsonFrame, FrameError, type Meta } from './frames.js';
import { PROTOCOL_VERSION, parseActivated, parseFailed, parsePrepared, parseRestored, parseStatusReply, type Failed, type StatusReply } from './protocol.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** The receiver's control address ({@link createReceiver} on the destination host). */
  to: { host: string; port: number };
  /** Pre-shared key (at least 16 bytes), the same as the receiver's. */
  key: Buffer | string;
  /** TLS-PSK identity, the same at both ends (default 'tcp-repair'). */
  identity?: string;
  /**
   * Per-connection application state sent with the image (JSON value or bytes). Called right
   * after the socket is frozen, when no more data can reach the application: state taken
   * earlier could miss bytes the application consumed while pending writes were flushed.
   */
  meta?: (socket: net.Socket) => Meta;
  /**
   * Moves the service address to the destination (and announces it). Called once every image
   * is confirmed restored. Without it the caller guarantees segments no longer reach this host.
   */
  handover?: () => Promise<void>;
  /**
   * Moves the address back if the destination fails after `handover` (enables rollback then),
   * or if `handover` itself throws (it may have half happened). Must be idempotent: a no-op
   * when the address is already here.
   */
  handback?: () => Promise<void>;
  /** Longest wait for each answer of the receiver (ms, default 10000). */
  timeoutMs?: number;
  checkpoint?: CheckpointOptions;
  /** Largest image frame to send (default MAX_IMAGE_FRAME_BYTES; the receiver's must be as large). */
  maxImageBytes?: number;
}

/** A connection now served by the destination; its local `socket` here is closed. */
export interface MovedConnection {
  socket: net.Socket;
  local: SocketImage['local'];
  peer: SocketImage['peer'];
  imageBytes: number;
  payloadBytes: number;
}

/** A connection that did not move and still works here, with the reason. */
export interface StayedConnection {
  socket: net.Socket;
  code: string;
  reason: string;
}

/** Milliseconds spent in each phase of a migration. */
export interface PhaseTimings {
  /** Connecting and authenticating the control channel. */
  connect: number;
  /** The receiver readying its sockets (before the freeze). */
  prepare: number;
  /** Freezing and reading every socket (the batch lock, then the sum of checkpoint() calls). */
  checkpoint: number;
  /** First image sent to last confirmation received (includes the receiver's restores). */
  transfer: number;
  /** Time the receiver spent restoring (sum, as it reported). */
  restore: number;
  handover: number;
  activate: number;
  release: number;
  /** First freeze to activation confirmed: the longest any connection stood still. */
  frozen: number;
  total: number;
}

/** What {@link migrate} did with each connection, and how long each phase took. */
export interface MigrationReport {
  moved: MovedConnection[];
  stayed: StayedConnection[];
  timings: PhaseTimings;
  /** Set when the migration as a whole failed (everything in `stayed`). */
  error?: Error;
}

/**
 * Image bytes sent between two yields to the event loop in the checkpoint loop. Each yield lets
 * the TLS socket send what is pending (so the receiver restores while this host checkpoints)
 * but also runs the application's traffic on the connections not frozen yet, which delays the
 * rest. At N = 10,000 with 10 busy streams, yields every 64 KiB, 256 KiB and 1 MiB froze for
 * 1,131, 1,011 and 1,168 ms (medians of 2 runs each; docs/bench.md).
 */
const YIELD_BYTES = 256 * 1024;

interface InFlight {
  socket: net.Socket;
  image: SocketImage;
  imageBytes: number;
}

/**
 * Moves live connections to another host, where {@link createReceiver} runs: checkpoints each
 * socket, streams its image (with `meta`) over an authenticated TLS channel, waits until the
 * destination restored all of them, calls `handover` to move the service address, then lets the
 * destination activate them and releases the frozen sources. Never throws for a connection: what
 * could not move stays here, working, and is listed in `stayed`.
 */
export async function migrate(sockets: Iterable<net.Socket>, options: MigrateOptions): Promise<MigrationReport> {
  const timeoutMs = options.timeoutMs ?? 10000;
  const key = keyBytes(options.key);
  const list = [...sockets];
  // Names this migration for a STATUS query after a lost ACTIVATED answer.
  const session = randomBytes(16).toString('hex');
  const t: PhaseTimings = { connect: 0, prepare: 0, checkpoint: 0, transfer: 0, restore: 0, handover: 0, activate: 0, release: 0, frozen: 0, total: 0 };
  const started = performance.now();
  const report: MigrationReport = { moved: [], stayed: [], timings: t };
  const inFlight = new Map<number, InFlight>();
  // Before the first freeze a failure moves nothing: every socket simply stays.
  const nothingMoved = (error: unknown): MigrationReport => {
    for (const socket of list) report.stayed.push(stayed(socket, error));
    report.error = error as Error;
    t.total = performance.now() - started;
    return report;
  };

  let channel: Channel;
  try {
    channel = await connectChannel(options.to.host, options.to.port, key, options.identity ?? DEFAULT_IDENTITY, timeoutMs);
  } catch (error) {
    return nothingMoved(error);
  }
  t.connect = performance.now() - started;

  // 0: announce the connections and wait until the receiver readied its sockets.
  try {
    const ipv6 = list.filter((socket) => isIPv6(socket.localAddress ?? '')).length;
    channel.send(encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: list.length, ipv6, session }));
    const p0 = performance.now();
    const frame = await channel.next(timeoutMs);
    if (frame.type !== 'PREPARED') throw new FrameError('ERR_FRAME_MESSAGE', `expected PREPARED, got ${frame.type}`);
    parsePrepared(frame);
    t.prepare = performance.now() - p0;
  } catch (error) {
    channel.socket.destroy();
    return nothingMoved(error);
  }

  const rollBack = (ids: Iterable<number>, error: unknown) => {
    for (const id of ids) {
      const entry = inFlight.get(id);
      if (!entry) continue;
      inFlight.delete(id);
      resume(entry.image);
      report.stayed.push(stayed(entry.socket, error));
    }
  };

  const rollBackMissing = (activatedIds: number[]) => {
    const activated = new Set(activatedIds);
    const missing = [...inFlight.keys()].filter((id) => !activated.has(id));
    if (missing.length > 0) rollBack(missing, new Error('receiver did not activate this connection'));
  };

  // Sockets not checkpointed yet when the channel fails stay too (the catch below lists them).
  let nextIndex = 0;
  // From the first freeze every connection waits for its turn unserved: the checkpoint loop
  // yields to the event loop (see YIELD_BYTES), which would otherwise run their traffic and
  // delay the freeze of the rest. Those that stay here flow again at the end.
  const paused = pauseFlowing(list);
  // Every freeze lock first, with one grace period for the batch (src/freeze-lock.ts): a wait
  // per checkpoint() would add 5-20 ms per connection to the freeze. The freeze starts here, and
  // the lock counts as checkpoint time.
  const firstFreeze = performance.now();
  if (options.checkpoint?.lock !== 'none') lockForCheckpoint(list);
  t.checkpoint = performance.now() - firstFreeze;
  try {
    // 1-2: checkpoint and stream.
    let sinceYield = 0;
    const transferStart = performance.now();
    for (const [id, socket] of list.entries()) {
      nextIndex = id + 1;
      const c0 = performance.now();
      let image: SocketImage;
      try {
        image = await checkpoint(socket, options.checkpoint);
      } catch (error) {
        report.stayed.push(stayed(socket, error)); // checkpoint rolled itself back
        continue;
      } finally {
        t.checkpoint += performance.now() - c0;
      }
      let frame: Buffer;
      let imageBytes: number;
      try {
        // The socket is frozen and no longer read: the state taken now matches the image.
        const metaValue = options.meta?.(socket);
        const bytes = encodeImage(image);
        imageBytes = bytes.length;
        frame = encodeImageFrame(id, metaValue, bytes, { maxImageBytes: options.maxImageBytes });
      } catch (error) {
        // This one cannot travel (meta failed, image too large): it stays, the others move.
        resume(image);
        report.stayed.push(stayed(socket, error));
        continue;
      }
      inFlight.set(id, { socket, image, imageBytes });
      // The images go out while this loop runs, so the receiver restores in parallel (two
      // CPUs): without the yields the TLS socket sends the first batch only and the rest after
      // the last checkpoint, and the freeze is the sum of both hosts' work instead of the
      // larger of the two (see YIELD_BYTES).
      channel.send(frame, { batch: true });
      sinceYield += frame.length;
      if (sinceYield >= YIELD_BYTES) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
    }
    channel.send(encodeJsonFrame('IMAGES_DONE', {}));
    // Every image must be answered exactly once: a replayed or unknown answer is a protocol
    // error (counting it would let an unconfirmed connection move).
    const failed: Array<[number, Failed]> = [];
    const answered = new Set<number>();
    const answer = (id: number, type: string) => {
      if (!inFlight.has(id) || answered.has(id)) throw new FrameError('ERR_FRAME_MESSAGE', `receiver answered ${type} for ${answered.has(id) ? 'an already answered' : 'an unknown'} connection id ${id}`);
      answered.add(id);
    };
    while (answered.size < inFlight.size) {
      const frame = await channel.next(timeoutMs);
      if (frame.type === 'RESTORED') {
        const r = parseRestored(frame);
        answer(r.id, 'RESTORED');
        t.restore += r.restoreMs;
      } else if (frame.type === 'FAILED') {
        const f = parseFailed(frame);
        answer(f.id, 'FAILED');
        failed.push([f.id, f]);
      } else throw new FrameError('ERR_FRAME_MESSAGE', `unexpected ${frame.type} frame from the receiver while waiting for restores`);
    }
    t.transfer = performance.now() - transferStart;

    // All or nothing while the address is shared: a connection left here after the address
    // moved would be cut off. So one failure rolls everything back.
    if (failed.length > 0 && options.handover) {
      const [, first] = failed[0]!;
      const error = Object.assign(new Error(`receiver failed to restore ${failed.length} connection(s): ${first.reason}`), { code: first.code });
      channel.send(encodeJsonFrame('ABORT', { ids: [...inFlight.keys()] }));
      for (const [id, f] of failed) rollBack([id], Object.assign(new Error(f.reason), { code: f.code }));
      rollBack([...inFlight.keys()], error);
      report.error = error;
      return report;
    }
    for (const [id, f] of failed) rollBack([id], Object.assign(new Error(f.reason), { code: f.code }));

    // 3: the address moves. Not if the channel already failed: the receiver's session is gone
    // and has discarded its copies (it can still fail during the hand-over: see handback).
    if (channel.failure) throw channel.failure;
    if (options.handover) {
      const h0 = performance.now();
      try {
        await options.handover();
      } catch (error) {
        trySend(channel, encodeJsonFrame('ABORT', { ids: [...inFlight.keys()] }));
        // A hand-over that failed may have half happened (address removed here, added there,
        // announcement failed): with a handback, make sure the address is here again before
        // the connections resume here, or their segments would go to a host that resets them.
        if (options.handback) await options.handback().catch(() => {});
        rollBack([...inFlight.keys()], error);
        report.error = error as Error;
        return report;
      } finally {
        t.handover = performance.now() - h0;
      }
    }

    // 4: activation. From here on a failure cannot simply resume the connections here: the
    // address is at the receiver. With a handback it comes back first; without one the
    // connections live or die at the receiver, and resuming them here as well could send
    // the client two different streams.
    const a0 = performance.now();
    try {
      channel.send(encodeJsonFrame('ACTIVATE', { ids: [...inFlight.keys()] }));
      const frame = await channel.next(timeoutMs);
      if (frame.type !== 'ACTIVATED') throw new FrameError('ERR_FRAME_MESSAGE', `expected ACTIVATED, got ${frame.type}`);
      rollBackMissing(parseActivated(frame).ids);
    } catch (error) {
      if (options.handback) {
        channel.socket.destroy();
        // The answer may be what was lost: ask before resuming anything here.
        const status = await askStatus(options, key, session, timeoutMs);
        if (status?.activated) rollBackMissing(status.ids);
        else {
          await options.handback();
          rollBack([...inFlight.keys()], error);
          report.error = error as Error;
          return report;
        }
      } else report.error = error as Error;
    }
    t.activate = performance.now() - a0;
    t.frozen = performance.now() - firstFreeze;

    // 5: release the frozen sources.
    const r0 = performance.now();
    for (const entry of inFlight.values()) {
      release(entry.image);
      const { image } = entry;
      report.moved.push({
        socket: entry.socket,
        local: image.local,
        peer: image.peer,
        imageBytes: entry.imageBytes,
        payloadBytes: image.recvQueue.length + image.sentUnacked.length + image.unsent.length,
      });
    }
    inFlight.clear();
    t.release = performance.now() - r0;
    trySend(channel, encodeJsonFrame('BYE', {}));
  } catch (error) {
    // The receiver failed, timed out or died before the hand-over: it discards its copies when
    // the channel drops, and every connection resumes here.
    channel.socket.destroy();
    rollBack([...inFlight.keys()], error);
    for (const socket of list.slice(nextIndex)) report.stayed.push(stayed(socket, error));
    report.error = error as Error;
  } finally {
    // A failed channel is destroyed at once; a good one is closed, and destroyed anyway if the
    // peer never answers the close (its fd must not outlive the migration).
    if (report.error) channel.socket.destroy();
    else channel.close();
    // Locks no checkpoint() took (the loop stopped early, or a checkpoint refused before its freeze).
    unlockUnused(list);
    for (const { socket } of report.stayed) if (paused.has(socket)) socket.resume();
    t.total = performance.now() - started;
  }
  return report;
}

/**
 * Pauses the sockets in flowing mode (the application reads them with 'data' handlers) and
 * returns them. A paused net.Socket reads at most up to its high-water mark into Node's buffer,
 * which checkpoint() takes into the image; the application is not called.
 */
function pauseFlowing(sockets: net.Socket[]): Set<net.Socket> {
  const paused = new Set<net.Socket>();
  for (const socket of sockets) {
    if (socket.readableFlowing !== true) continue;
    socket.pause();
    paused.add(socket);
  }
  return paused;
}

/**
 * Asks the receiver, on a new channel, whether it activated the session. Null when it cannot be
 * reached or answers nonsense: the caller then treats the session as not activated (a receiver
 * that is gone no longer holds live copies, unless it died after activating).
 */
async function askStatus(options: MigrateOptions, key: Buffer, session: string, timeoutMs: number): Promise<StatusReply | null> {
  let channel: Channel | undefined;
  try {
    channel = await connectChannel(options.to.host, options.to.port, key, options.identity ?? DEFAULT_IDENTITY, timeoutMs);
    channel.send(encodeJsonFrame('STATUS', { session }));
    const frame = await channel.next(timeoutMs);
    return frame.type === 'STATUS_REPLY' ? parseStatusReply(frame) : null;
  } catch {
    return null;
  } finally {
    channel?.socket.destroy();
  }
}

/** Sends if the channel still works; a message to a peer that is gone changes nothing. */
function trySend(channel: Channel, frame: Buffer): void {
  try {
    channel.send(frame);
  } catch {
    // the channel failed: the receiver discards what it had when it notices
  }
}

function stayed(socket: net.Socket, error: unknown): StayedConnection {
  const e = error as Error & { code?: string };
  return { socket, code: e.code ?? 'ERR_MIGRATION', reason: e.message };
}
