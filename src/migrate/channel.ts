/**
 * The authenticated control channel: TLS 1.3 with a pre-shared key (TLS-PSK, psk_dhe_ke). Both
 * ends prove they hold the key, the stream is encrypted with keys from an ephemeral X25519
 * exchange (forward secret: a key leaked later does not open recorded sessions), and the
 * handshake's fresh randoms stop replays of an earlier session. A wrong key fails the handshake
 * (binder check) before any frame is exchanged.
 */
import tls from 'node:tls';
import { once } from 'node:events';
import { FrameDecoder, FrameError, type Frame, type FrameLimits } from './frames.js';

// TLS 1.3 suites whose hash (SHA-256) matches Node's external PSKs.
export const PSK_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
export const DEFAULT_IDENTITY = 'tcp-repair';
const MIN_KEY_BYTES = 16;

export function keyBytes(key: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8');
  if (bytes.length < MIN_KEY_BYTES) throw new TypeError(`the migration key must be at least ${MIN_KEY_BYTES} bytes`);
  return bytes;
}

export function tlsServerOptions(key: Buffer, identity: string): tls.TlsOptions {
  return {
    pskCallback: (_socket, id) => (id === identity ? key : null),
    ciphers: PSK_CIPHERS,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

export async function connectChannel(host: string, port: number, key: Buffer, identity: string, timeoutMs: number): Promise<Channel> {
  const socket = tls.connect({
    host,
    port,
    pskCallback: () => ({ psk: key, identity }),
    ciphers: PSK_CIPHERS,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    checkServerIdentity: () => undefined,
  });
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(new FrameError('ERR_CHANNEL_TIMEOUT', `no TLS-PSK handshake with ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
  try {
    await once(socket, 'secureConnect');
  } catch (error) {
    const e = error as Error & { code?: string };
    if (e.code?.startsWith('ERR_SSL')) {
      throw new FrameError('ERR_CHANNEL_AUTH', `TLS-PSK handshake with ${host}:${port} failed: wrong key or identity (${e.code})`);
    }
    if (e instanceof FrameError) throw e;
    // Refused, unreachable, or the receiver died mid-handshake: say where, keep the errno code.
    throw new FrameError(e.code ?? 'ERR_CHANNEL_CONNECT', `cannot open the control channel to ${host}:${port}: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
  return new Channel(socket);
}

/** Frames decoded but not yet taken by next(): beyond this the channel stops reading the peer. */
const QUEUE_HIGH_WATER_BYTES = 8 * 1024 * 1024;

/** Batched frames go out once this many bytes are pending (see Channel.send). */
const BATCH_BYTES = 64 * 1024;

/**
 * Lets one turn of the event loop run (setImmediate): pending writes complete and the next
 * encrypted chunk goes out, received frames get decoded.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Frames in, frames out, over one TLS socket; `next()` waits for the next frame with a timeout. */
export class Channel {
  private readonly decoder: FrameDecoder;
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;
  private corked = false;
  private corkedBytes = 0;
  private flushScheduled = false;

  /** Why the channel failed (closed, timed out, malformed stream), or null while it works. */
  get failure(): Error | null {
    return this.failed;
  }

  constructor(readonly socket: tls.TLSSocket, limits: FrameLimits = {}) {
    this.decoder = new FrameDecoder(limits);
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of this.decoder.push(chunk)) this.deliver(frame);
      } catch (error) {
        this.fail(error as Error);
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new FrameError('ERR_CHANNEL_CLOSED', this.decoder.pending() > 0 ? 'control channel closed in the middle of a frame' : 'control channel closed by the peer')));
  }

  /**
   * Sends a frame. With `batch`, the frame may wait (corked) until this turn of the event loop
   * ends or BATCH_BYTES are pending, then goes out with the others in one TLS record and one
   * write: per-connection frames (images, confirmations) otherwise cost one record and one
   * syscall each. A frame sent without `batch` goes out at once, with any batched ones before it.
   * A caller sending many frames in one synchronous run must yield to the event loop now and
   * then (yieldToEventLoop): TLS has one encrypted write in flight at a time and learns that it
   * completed only from an immediate, so without a yield everything after the first batch
   * waits for the run to end.
   */
  send(frame: Buffer, options: { batch?: boolean } = {}): void {
    if (this.failed) throw this.failed;
    if (options.batch) {
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          setImmediate(() => {
            this.flushScheduled = false;
            this.flush();
          });
        }
      }
      this.socket.write(frame);
      this.corkedBytes += frame.length;
      if (this.corkedBytes >= BATCH_BYTES) this.flush();
      return;
    }
    this.socket.write(frame);
    this.flush();
  }

  /** Sends the batched frames now. */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.corkedBytes = 0;
    this.socket.uncork();
  }

  next(timeoutMs: number): Promise<Frame> {
    const ready = this.queue.shift();
    if (ready) {
      this.queuedBytes -= ready.payload.length;
      // Flow control: a peer faster than the consumer waits in TCP, not in this process's memory.
      if (this.queuedBytes < QUEUE_HIGH_WATER_BYTES && this.socket.isPaused()) this.socket.resume();
      return Promise.resolve(ready);
    }
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new FrameError('ERR_CHANNEL_TIMEOUT', `no message from the peer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (f) => { clearTimeout(timer); resolve(f); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
  }

  /** Ends the channel; destroys it if the peer has not closed its side within `graceMs`. */
  close(graceMs = 5000): void {
    this.flush();
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), graceMs);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  private deliver(frame: Frame): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter.resolve(frame);
    } else {
      this.queue.push(frame);
      this.queuedBytes += frame.payload.length;
      if (this.queuedBytes >= QUEUE_HIGH_WATER_BYTES) this.socket.pause();
    }
  }

  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = error;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }
}
