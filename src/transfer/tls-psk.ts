/**
 * The control connection between two hosts: TLS 1.3 with a pre-shared key (no certificates).
 * Measured with Node 20 / OpenSSL 3.0: TLS 1.3 PSK works through pskCallback on both sides
 * (negotiated TLS_CHACHA20_POLY1305_SHA256, PSK with (EC)DHE, so forward secret); a wrong key
 * fails the handshake on both ends (server: ERR_SSL_BINDER_DOES_NOT_VERIFY). TLS 1.2 PSK suites
 * also work but are not offered. What this gives: both ends proved they hold the key, the bytes
 * are private and integrity-protected, and a recorded session cannot be replayed (fresh
 * handshake randoms and keys each time, record sequence numbers within one, no 0-RTT).
 */
import net from 'node:net';
import tls from 'node:tls';
import { ChannelError, MessageChannel, type ChannelOptions } from './channel.js';

export const DEFAULT_IDENTITY = 'tcp-repair';
/** 256 bits: a shorter key invites brute force of the PSK binder. */
export const MIN_KEY_BYTES = 32;

export interface PskOptions extends ChannelOptions {
  /** The shared secret, at least 32 random bytes (e.g. crypto.randomBytes(32)). */
  key: Uint8Array;
  /** Names the key; both ends must agree. */
  identity?: string;
  /** Bound on TCP connect plus TLS handshake; default 5 s. */
  handshakeTimeoutMs?: number;
}

function checkKey(options: PskOptions): { key: Buffer; identity: string } {
  if (!(options.key instanceof Uint8Array) || options.key.length < MIN_KEY_BYTES) {
    throw new RangeError(`the pre-shared key must be at least ${MIN_KEY_BYTES} bytes`);
  }
  return { key: Buffer.from(options.key), identity: options.identity ?? DEFAULT_IDENTITY };
}

const TLS_SETTINGS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

/** Connects to a control server; resolves with the channel once both ends are authenticated. */
export function connectControl(options: PskOptions & { host: string; port: number }): Promise<MessageChannel> {
  const { key, identity } = checkKey(options);
  const timeoutMs = options.handshakeTimeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      ...TLS_SETTINGS,
      pskCallback: () => ({ psk: key, identity }),
      // No certificate to check: the PSK binder already proves the server holds the key.
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ChannelError('ERR_CHANNEL_TIMEOUT', `control handshake with ${options.host}:${options.port} took over ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(new MessageChannel(socket, options));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(new ChannelError('ERR_CHANNEL_SOCKET', `control handshake with ${options.host}:${options.port} failed: ${error.message}`, { cause: error }));
    });
  });
}

export interface ControlServer {
  readonly host: string;
  readonly port: number;
  /** The next authenticated connection; rejects after `timeoutMs` (default 10 s). */
  accept(timeoutMs?: number): Promise<MessageChannel>;
  /** Handshakes refused so far (wrong key, wrong identity, not TLS): for logs and tests. */
  readonly refused: readonly Error[];
  /** Stops listening and destroys every connection it accepted (server.close alone waits for them). */
  close(): Promise<void>;
}

/** Listens for control connections; only peers holding the key get through. */
export async function listenControl(options: PskOptions & { host: string; port?: number }): Promise<ControlServer> {
  const { key, identity } = checkKey(options);
  const timeoutMs = options.handshakeTimeoutMs ?? 5000;
  const ready: MessageChannel[] = [];
  const waiting: Array<(channel: MessageChannel) => void> = [];
  const refused: Error[] = [];
  const open = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    ...TLS_SETTINGS,
    handshakeTimeout: timeoutMs,
    // Returning null refuses an unknown identity; a wrong key fails the binder check.
    pskCallback: (_socket, clientIdentity) => (clientIdentity === identity ? key : null),
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.setNoDelay(true);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    const channel = new MessageChannel(socket, options);
    const taker = waiting.shift();
    if (taker) taker(channel);
    else ready.push(channel);
  });
  server.on('tlsClientError', (error) => refused.push(error));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    host: address.address,
    port: address.port,
    refused,
    accept(acceptTimeoutMs = 10_000) {
      const channel = ready.shift();
      if (channel) return Promise.resolve(channel);
      return new Promise((resolve, reject) => {
        const taker = (accepted: MessageChannel) => {
          clearTimeout(timer);
          resolve(accepted);
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(taker), 1);
          reject(new ChannelError('ERR_CHANNEL_TIMEOUT', `no authenticated control connection within ${acceptTimeoutMs} ms`));
        }, acceptTimeoutMs);
        waiting.push(taker);
      });
    },
    close() {
      ready.splice(0);
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
