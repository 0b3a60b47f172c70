/** Connected TCP pairs and byte collectors for the checkpoint/restore tests (loopback only). */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { scaled } from './time-scale.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Pair {
  server: net.Server;
  /** The server side of the connection (the one the tests checkpoint). */
  srv: net.Socket;
  client: net.Socket;
  close(): void;
}

export interface PairOptions {
  /** Address the server listens on (default 127.0.0.1). */
  listen?: string;
  /** Address the client connects to (default: the listen address). */
  connect?: string;
  allowHalfOpen?: boolean;
  clientAllowHalfOpen?: boolean;
}

/** A listening server and one connection to it; close() destroys everything (idempotent). */
export async function connectedPair(options: PairOptions = {}): Promise<Pair> {
  const listen = options.listen ?? '127.0.0.1';
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  server.listen(0, listen);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const client = net.connect({ port, host: options.connect ?? listen, allowHalfOpen: options.clientAllowHalfOpen ?? false });
  await once(client, 'connect');
  const [srv] = (await accepted) as [net.Socket];
  const extra: net.Socket[] = [];
  return {
    server,
    srv,
    client,
    close() {
      for (const s of [srv, client, ...extra]) s.destroy();
      server.close();
    },
  };
}

/** Accumulates every byte a socket delivers, and tells whether 'end'/'error' happened. */
export class Collector {
  chunks: Buffer[] = [];
  length = 0;
  ended = false;
  errors: Error[] = [];
  private waiters: Array<() => void> = [];
  constructor(socket?: net.Socket) {
    if (socket) this.attach(socket);
  }
  attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => this.push(d));
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (e) => {
      this.errors.push(e);
      this.wake();
    });
  }
  push(d: Buffer): void {
    this.chunks.push(d);
    this.length += d.length;
    this.wake();
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
  /** Resolves once `n` bytes arrived (or 'end'); rejects after `timeoutMs` (a hang guard, scaled: time-scale.ts). */
  async waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + scaled(timeoutMs);
    while (this.length < n && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
  async waitEnd(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + scaled(timeoutMs);
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('timed out waiting for end');
      await sleep(5);
    }
  }
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Deterministic, non-repeating-looking bytes (so an offset error shows up as a mismatch). */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Writes `data` and resolves when Node has handed it to the kernel or buffered it (no back-pressure wait). */
export function writeNoWait(socket: net.Socket, data: Buffer): void {
  socket.write(data);
}

/** Polls `check` every few ms until it returns true; throws after `timeoutMs` (a hang guard, scaled: time-scale.ts). */
export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + scaled(timeoutMs);
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
