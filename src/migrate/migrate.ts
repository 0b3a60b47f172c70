/**
 * migrate(): the source end of a host-to-host move. The order follows what gave zero resets:
 *   1. freeze and checkpoint each socket, streaming each image to the receiver as it is taken;
 *   2. the receiver restores each quietly (no window probe, writes held) and confirms it;
 *   3. once every image is confirmed, the service address moves (`handover`): before that,
 *      segments must still reach this host, where the frozen sockets drop them silently;
 *   4. ACTIVATE: the receiver probes each socket (the peer ACKs to the new host at once) and
 *      releases held writes; a probe sent before the address moved would be answered to us;
 *   5. only then are the frozen sockets here released: released earlier, they could answer a
 *      late segment with an RST.
 * Anything that fails before the address moves rolls back: the receiver discards its copies
 * silently and the sockets resume here, untouched.
 */
import type net from 'node:net';
import { checkpoint, release, resume, type CheckpointOptions } from '../checkpoint.js';
import { encodeImage, type SocketImage } from '../image.js';
import { connectChannel, DEFAULT_IDENTITY, keyBytes, type Channel } from './channel.js';
import { encodeImageFrame, encodeJsonFrame, parseJson, type Meta } from './frames.js';
import { PROTOCOL_VERSION, type Activated, type Failed, type Restored } from './protocol.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** The receiver's control address ({@link createReceiver} on the destination host). */
  to: { host: string; port: number };
  /** Pre-shared key (at least 16 bytes), the same as the receiver's. */
  key: Buffer | string;
  /** TLS-PSK identity, the same at both ends (default 'tcp-repair'). */
  identity?: string;
  /** Per-connection application state sent with the image (JSON value or bytes). */
  meta?: (socket: net.Socket) => Meta;
  /**
   * Moves the service address to the destination (and announces it). Called once every image
   * is confirmed restored. Without it the caller guarantees segments no longer reach this host.
   */
  handover?: () => Promise<void>;
  /** Moves the address back if the destination fails after `handover` (enables rollback then). */
  handback?: () => Promise<void>;
  /** Longest wait for each answer of the receiver (ms, default 10000). */
  timeoutMs?: number;
  checkpoint?: CheckpointOptions;
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
  /** Freezing and reading every socket (sum of checkpoint() calls). */
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
  const t: PhaseTimings = { connect: 0, checkpoint: 0, transfer: 0, restore: 0, handover: 0, activate: 0, release: 0, frozen: 0, total: 0 };
  const started = performance.now();
  const report: MigrationReport = { moved: [], stayed: [], timings: t };
  const inFlight = new Map<number, InFlight>();

  let channel: Channel;
  try {
    channel = await connectChannel(options.to.host, options.to.port, key, options.identity ?? DEFAULT_IDENTITY, timeoutMs);
  } catch (error) {
    // Nothing was frozen yet: every socket simply stays.
    for (const socket of list) report.stayed.push(stayed(socket, error));
    report.error = error as Error;
    t.total = performance.now() - started;
    return report;
  }
  t.connect = performance.now() - started;

  const rollBack = (ids: Iterable<number>, error: unknown) => {
    for (const id of ids) {
      const entry = inFlight.get(id);
      if (!entry) continue;
      inFlight.delete(id);
      resume(entry.image);
      report.stayed.push(stayed(entry.socket, error));
    }
  };

  let firstFreeze = 0;
  try {
    channel.send(encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: list.length }));
    // 1-2: checkpoint and stream.
    const transferStart = performance.now();
    firstFreeze = transferStart;
    for (const [id, socket] of list.entries()) {
      const metaValue = options.meta?.(socket);
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
      const bytes = encodeImage(image);
      inFlight.set(id, { socket, image, imageBytes: bytes.length });
      channel.send(encodeImageFrame(id, metaValue, bytes));
    }
    channel.send(encodeJsonFrame('IMAGES_DONE', {}));
    const failed: Array<[number, Failed]> = [];
    let confirmed = 0;
    while (confirmed + failed.length < inFlight.size) {
      const frame = await channel.next(timeoutMs);
      if (frame.type === 'RESTORED') {
        const r = parseJson<Restored>(frame);
        t.restore += r.restoreMs;
        confirmed++;
      } else if (frame.type === 'FAILED') {
        const f = parseJson<Failed>(frame);
        failed.push([f.id, f]);
      } else throw new Error(`unexpected ${frame.type} frame from the receiver`);
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

    // 3: the address moves.
    if (options.handover) {
      const h0 = performance.now();
      try {
        await options.handover();
      } catch (error) {
        channel.send(encodeJsonFrame('ABORT', { ids: [...inFlight.keys()] }));
        rollBack([...inFlight.keys()], error);
        report.error = error as Error;
        return report;
      } finally {
        t.handover = performance.now() - h0;
      }
    }

    // 4: activation.
    const a0 = performance.now();
    channel.send(encodeJsonFrame('ACTIVATE', { ids: [...inFlight.keys()] }));
    try {
      const frame = await channel.next(timeoutMs);
      if (frame.type !== 'ACTIVATED') throw new Error(`expected ACTIVATED, got ${frame.type}`);
      const a = parseJson<Activated>(frame);
      const activated = new Set(a.ids);
      const missing = [...inFlight.keys()].filter((id) => !activated.has(id));
      if (missing.length > 0) rollBack(missing, new Error('receiver did not activate this connection'));
    } catch (error) {
      if (options.handback) {
        await options.handback();
        rollBack([...inFlight.keys()], error);
        report.error = error as Error;
        return report;
      }
      // The address is gone and cannot come back: the connections live or die at the receiver.
      report.error = error as Error;
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
    channel.send(encodeJsonFrame('BYE', {}));
    channel.close();
  } catch (error) {
    // The receiver failed, timed out or died before activation: it discards its copies when
    // the channel drops, and every connection resumes here.
    channel.socket.destroy();
    rollBack([...inFlight.keys()], error);
    report.error = error as Error;
  } finally {
    if (!channel.socket.destroyed) channel.socket.end();
    t.total = performance.now() - started;
  }
  return report;
}

function stayed(socket: net.Socket, error: unknown): StayedConnection {
  const e = error as Error & { code?: string };
  return { socket, code: e.code ?? 'ERR_MIGRATION', reason: e.message };
}
