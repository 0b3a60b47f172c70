/**
 * createReceiver(): the destination end. Accepts authenticated control connections, restores
 * each image as it arrives (quietly: IP_TRANSPARENT, kept frozen behind a drop-all filter in
 * repair mode, writes held), confirms it, and on ACTIVATE probes each socket and hands it to the
 * application. Anything not activated when the session ends (abort, error, channel lost) is
 * closed silently so the source can resume it; if the process dies instead, the kernel closes
 * those sockets in repair mode, which is just as silent.
 *
 * A session must follow HELLO (answered with PREPARED once a socket per announced connection is
 * readied), IMAGE*, IMAGES_DONE, then ABORT or ACTIVATE, then BYE; anything
 * else (a replayed image id, more images than announced, an ACTIVATE before IMAGES_DONE, a
 * malformed message) ends the session and discards its connections. A channel whose first
 * message is STATUS asks what became of an earlier session (see session-outcomes.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter } from 'node:events';
import { decodeImage, type SocketImage } from '../image.js';
import { activateFrozen, adoptFrozen, discardFrozen, restoreFrozen, type FrozenRestore } from '../restore.js';
import { Channel, DEFAULT_IDENTITY, keyBytes, tlsServerOptions } from './channel.js';
import { decodeImageFrame, encodeJsonFrame, FrameError, type Frame, type Meta } from './frames.js';
import { PROTOCOL_VERSION, parseHello, parseIdList, parseStatus } from './protocol.js';
import { SessionOutcomes } from './session-outcomes.js';
import { SpareSockets } from './spares.js';

/** Options of {@link createReceiver}. */
export interface ReceiverOptions {
  /** Address and port the control channel listens on (not the service address). */
  host: string;
  port: number;
  /** Pre-shared key (at least 16 bytes) shared with the source. */
  key: Buffer | string;
  /** TLS-PSK identity, the same at both ends (default 'tcp-repair'). */
  identity?: string;
  /** Restore with IP_TRANSPARENT (default true): the service address may not be here yet. */
  transparent?: boolean;
  /** Longest wait for the next message of a session (ms, default 30000). */
  timeoutMs?: number;
  /** Largest image frame accepted (default MAX_IMAGE_FRAME_BYTES); refused at its header. */
  maxImageBytes?: number;
  /** Most connections one session may bring (default 100000). */
  maxConnections?: number;
}

/** Details of a restored connection, passed to {@link OnConnection}. */
export interface ReceivedConnection {
  image: SocketImage;
  /** Session-local id the source gave this connection. */
  id: number;
}

/**
 * Called with each connection once it is live on this host, with the `meta` the source sent:
 * the place to hand the socket to the application (e.g. `server.emit('connection', socket)`).
 */
export type OnConnection = (socket: net.Socket, meta: Meta, info: ReceivedConnection) => void;

/**
 * A connection restored and confirmed, not yet activated: only its fd (frozen). The net.Socket is
 * built after activation, so that its cost (more than the restore's kernel calls) stays out of
 * the freeze.
 */
interface Pending {
  frozen: FrozenRestore;
  meta: Meta;
}

/**
 * The destination end of {@link migrate}. Emits 'sessionError' when a source's session fails (its
 * connections stay at the source) and 'error' when `onConnection` throws. For observability
 * (and the fault-injection tests, which stop the process at each) also: 'session' (a source
 * connected and authenticated), 'image' (id: an image arrived, before its restore), 'restored'
 * (id, image: restored, before the confirmation is sent), 'restoreFailed' (id, error) and
 * 'activate' (ids: before activating).
 */
export class Receiver extends EventEmitter {
  private readonly server: tls.Server;
  private readonly key: Buffer;
  private readonly identity: string;
  private readonly outcomes = new SessionOutcomes();

  constructor(private readonly options: ReceiverOptions, private readonly onConnection: OnConnection) {
    super();
    this.key = keyBytes(options.key);
    this.identity = options.identity ?? DEFAULT_IDENTITY;
    this.server = tls.createServer(tlsServerOptions(this.key, this.identity), (socket) => {
      socket.setNoDelay(true);
      this.runSession(new Channel(socket, { maxImageBytes: options.maxImageBytes })).catch((error: unknown) => this.emit('sessionError', error));
    });
    // A client with the wrong key fails the handshake: nothing of it reaches a session.
    this.server.on('tlsClientError', (error) => this.emit('sessionError', error));
  }

  /** Starts accepting sources on `host`:`port`; resolves once listening. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** The control channel's bound address (useful with port 0). */
  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  /** Stops accepting sources; sessions in progress finish. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async runSession(channel: Channel): Promise<void> {
    const timeoutMs = this.options.timeoutMs ?? 30000;
    const maxConnections = this.options.maxConnections ?? 100000;
    const pending = new Map<number, Pending>();
    const seen = new Set<number>();
    const spares = new SpareSockets();
    this.emit('session');
    try {
      const first = await channel.next(timeoutMs);
      if (first.type === 'STATUS') {
        channel.send(encodeJsonFrame('STATUS_REPLY', this.outcomes.query(parseStatus(first).session)));
        channel.close();
        return;
      }
      if (first.type !== 'HELLO') throw protocolError(`expected HELLO, got ${first.type}`);
      const hello = parseHello(first);
      if (hello.version !== PROTOCOL_VERSION) throw protocolError(`source speaks protocol ${hello.version}, this receiver ${PROTOCOL_VERSION}`);
      if (hello.count > maxConnections) throw protocolError(`source announces ${hello.count} connections, more than ${maxConnections}`);
      // The source freezes nothing before this answer: readying the sockets now keeps that
      // work out of the freeze.
      const p0 = performance.now();
      const prepared = spares.prepare({ 4: hello.count - hello.ipv6, 6: hello.ipv6 }, { transparent: this.transparent() });
      channel.send(encodeJsonFrame('PREPARED', { prepared, prepareMs: performance.now() - p0 }));
      let phase: 'images' | 'decide' | 'activated' = 'images';
      for (;;) {
        const frame = await channel.next(timeoutMs);
        if (frame.type === 'IMAGE' && phase === 'images') {
          if (seen.size >= hello.count) throw protocolError(`more images than the ${hello.count} announced`);
          this.restoreOne(channel, frame, pending, seen, spares);
        } else if (frame.type === 'IMAGES_DONE' && phase === 'images') phase = 'decide';
        else if (frame.type === 'ABORT' && phase === 'decide') this.abort(parseIdList(frame).ids, pending);
        else if (frame.type === 'ACTIVATE' && phase === 'decide') {
          phase = 'activated';
          const { ids } = parseIdList(frame);
          // The source asked about this session on another channel, heard "not activated" and
          // resumed its own copies: activating these too would make two live copies.
          if (hello.session !== undefined && !this.outcomes.mayActivate(hello.session)) throw protocolError('ACTIVATE for a session a status query already answered as not activated');
          this.emit('activate', ids);
          this.activateAll(channel, ids, pending, hello.session);
        } else if (frame.type === 'BYE' && phase !== 'images') break;
        else throw protocolError(`unexpected ${frame.type} frame ${phase === 'images' ? 'while receiving images' : phase === 'decide' ? 'after the images' : 'after activation'}`);
      }
      channel.close();
    } catch (error) {
      channel.socket.destroy();
      throw error;
    } finally {
      // Whatever was restored but not activated goes away without a sound: the source still
      // holds those connections and will resume them.
      this.abort([...pending.keys()], pending);
      spares.closeAll();
    }
  }

  private transparent(): boolean {
    return this.options.transparent !== false;
  }

  private restoreOne(channel: Channel, frame: Frame, pending: Map<number, Pending>, seen: Set<number>, spares: SpareSockets): void {
    const { id, meta, image: bytes } = decodeImageFrame(frame);
    // A replayed id would restore a second copy and lose track of the first.
    if (seen.has(id)) throw protocolError(`image id ${id} received twice`);
    seen.add(id);
    this.emit('image', id);
    const started = performance.now();
    try {
      const image = decodeImage(bytes);
      const frozen = restoreFrozen(image, { transparent: this.transparent() }, spares.take(image.family));
      pending.set(id, { frozen, meta });
      this.emit('restored', id, image);
      channel.send(encodeJsonFrame('RESTORED', { id, restoreMs: performance.now() - started }), { batch: true });
    } catch (error) {
      const e = error as Error & { code?: string };
      this.emit('restoreFailed', id, error);
      channel.send(encodeJsonFrame('FAILED', { id, code: e.code ?? 'ERR_RESTORE', reason: e.message }), { batch: true });
    }
  }

  private activateAll(channel: Channel, ids: number[], pending: Map<number, Pending>, session: string | undefined): void {
    const started = performance.now();
    const activated: Array<[number, Pending]> = [];
    for (const id of ids) {
      const entry = pending.get(id);
      if (!entry) continue;
      pending.delete(id);
      activateFrozen(entry.frozen);
      activated.push([id, entry]);
    }
    // The connections are live in the kernel: the source may release its copies now (and is
    // told so again if it asks: this answer may be lost). Bytes arriving before the net.Sockets
    // below exist wait in the kernel's receive queues.
    if (session !== undefined) this.outcomes.recordActivated(session, activated.map(([id]) => id));
    channel.send(encodeJsonFrame('ACTIVATED', { ids: activated.map(([id]) => id), activateMs: performance.now() - started }));
    // Handed to the application only now, so an aborted session never shows it a socket.
    for (const [id, entry] of activated) {
      const socket = adoptFrozen(entry.frozen);
      // Errors before the application attaches its own listener must not crash the process.
      socket.on('error', () => {});
      try {
        this.onConnection(socket, entry.meta, { image: entry.frozen.image, id });
      } catch (error) {
        this.emit('error', error);
      }
    }
  }

  private abort(ids: number[], pending: Map<number, Pending>): void {
    for (const id of ids) {
      const entry = pending.get(id);
      if (!entry) continue;
      pending.delete(id);
      // Never activated: still in repair mode, so closing it sends neither FIN nor RST.
      discardFrozen(entry.frozen);
    }
  }
}

function protocolError(message: string): FrameError {
  return new FrameError('ERR_FRAME_MESSAGE', message);
}

/** Creates the destination end of a migration; call `listen()` on the result. */
export function createReceiver(options: ReceiverOptions, onConnection: OnConnection): Receiver {
  return new Receiver(options, onConnection);
}
