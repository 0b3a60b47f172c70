/**
 * The soak's client process (inside the client namespace): live connections to the service
 * address, each sending its keyed stream and checking every byte of the server's, with a
 * running sha256 of both directions that the driver compares with digests it computes itself.
 */
import net from 'node:net';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { streamBytes, StreamVerifier } from './keystream.js';

export interface ClientConfig {
  addresses: string[];
  port: number;
  connections: number;
  chunkBytes: number;
  intervalMs: number;
}

export interface ClientConnectionStatus {
  id: number;
  key: string;
  sent: number;
  received: number;
  firstBad: number;
  /** sha256 of everything sent / received so far. */
  sentDigest?: string;
  receivedDigest?: string;
  error?: string;
  closed: boolean;
}

interface Connection {
  id: number;
  key: Buffer;
  socket: net.Socket;
  sent: number;
  verifier: StreamVerifier;
  sentHash: Hash;
  receivedHash: Hash;
  error?: string;
  closed: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ClientConfig;
const connections: Connection[] = [];
let pumping = true;

function send(message: unknown): void {
  process.send?.(message);
}

async function open(id: number, address: string): Promise<Connection> {
  const socket = net.connect({ host: address, port: config.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  const key = randomBytes(32);
  const c: Connection = { id, key, socket, sent: 0, verifier: new StreamVerifier(key, 1), sentHash: createHash('sha256'), receivedHash: createHash('sha256'), closed: false };
  socket.on('error', (e: NodeJS.ErrnoException) => (c.error ??= `${e.code ?? ''} ${e.message}`));
  socket.on('close', () => (c.closed = true));
  socket.on('end', () => (c.error ??= 'the server ended the connection'));
  socket.on('data', (chunk: Buffer) => {
    c.verifier.push(chunk);
    c.receivedHash.update(chunk);
  });
  socket.write(`SOAK ${id} ${key.toString('hex')}\n`);
  return c;
}

function pump(): void {
  if (!pumping) return;
  for (const c of connections) {
    if (c.closed || c.socket.writableLength > 4 * config.chunkBytes) continue;
    const chunk = streamBytes(c.key, 0, c.sent, config.chunkBytes);
    c.sentHash.update(chunk);
    c.sent += chunk.length;
    c.socket.write(chunk);
  }
}

function status(final = false): ClientConnectionStatus[] {
  return connections.map((c) => ({
    id: c.id,
    key: c.key.toString('hex'),
    sent: c.sent,
    received: c.verifier.offset,
    firstBad: c.verifier.firstBad,
    ...(final ? { sentDigest: c.sentHash.copy().digest('hex'), receivedDigest: c.receivedHash.copy().digest('hex') } : {}),
    error: c.error,
    closed: c.closed,
  }));
}

async function main(): Promise<void> {
  for (let i = 0; i < config.connections; i++) connections.push(await open(i, config.addresses[i % config.addresses.length]!));
  setInterval(pump, config.intervalMs);
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd === 'status') send({ status: status() });
    else if (message.cmd === 'quiesce') {
      pumping = false;
      send({ quiesced: status() });
    } else if (message.cmd === 'final') send({ final: status(true) });
    else if (message.cmd === 'tuples') send({ tuples: connections.map((c) => ({ local: { address: c.socket.remoteAddress!, port: c.socket.remotePort! }, peer: { address: c.socket.localAddress!, port: c.socket.localPort! } })) });
    else if (message.cmd === 'exit') {
      for (const c of connections) c.socket.destroy();
      process.exit(0);
    }
  });
  send({ ready: { pid: process.pid } });
}

main().catch((error: unknown) => {
  send({ fatal: (error as Error).stack ?? String(error) });
  process.exit(1);
});
