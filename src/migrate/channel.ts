/**
 * The authenticated control channel: TLS 1.3 with a pre-shared key (TLS-PSK, psk_dhe_ke). Both
 * ends prove they hold the key, the stream is encrypted with keys from an ephemeral X25519
 * exchange (forward secret: a key leaked later does not open recorded sessions), and the
 * handshake's fresh randoms stop replays of an earlier session. A wrong key fails the handshake
 * (binder check) before any frame is exchanged.
 */
import tls from 'node:tls';
import { once } from 'node:events';
import { FrameDecoder, FrameError, type Frame } from './frames.js';

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
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return new Channel(socket);
}

/** Frames in, frames out, over one TLS socket; `next()` waits for the next frame with a timeout. */
export class Channel {
  private readonly decoder = new FrameDecoder();
  private readonly queue: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(readonly socket: tls.TLSSocket) {
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

  send(frame: Buffer): void {
    if (this.failure) throw this.failure;
    this.socket.write(frame);
  }

  next(timeoutMs: number): Promise<Frame> {
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
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

  close(): void {
    this.socket.end();
  }

  private deliver(frame: Frame): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter.resolve(frame);
    } else this.queue.push(frame);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }
}
