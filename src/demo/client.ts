/**
 * The demo's client process (runs inside the client namespace): many live connections to the
 * service address, half streaming (sha256 of sent vs echoed bytes), half request/response
 * (each answer checked, every response time recorded to measure the stall a move causes).
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { hangGuardMs } from '../child-ipc.js';
import { startEchoStream, type StreamDigest } from './echo-stream.js';

export type { StreamDigest };

const config = JSON.parse(process.argv[2] ?? '{}') as {
  addresses: string[];
  port: number;
  connections: number;
  streams: number;
  streamBytes: number;
  requestIntervalMs: number;
};

export interface ConnectionResult {
  kind: 'stream' | 'rr';
  ok: boolean;
  bytes: number;
  /** Longest time with nothing back while something was outstanding (ms). */
  stall: number;
  error?: string;
  /** Stream connections: the bytes the client sent (count and sha256)… */
  sent?: StreamDigest;
  /** …and the bytes that came back echoed through the (moved) connection. */
  echoed?: StreamDigest;
}

function send(message: unknown): void {
  process.send?.(message);
}

let finishing = false;
const waiters: Array<() => Promise<ConnectionResult>> = [];

function connect(address: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port: config.port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function streamConnection(address: string): Promise<() => Promise<ConnectionResult>> {
  const socket = await connect(address);
  const finish = startEchoStream(socket, {
    totalBytes: config.streamBytes,
    intervalMs: 2,
    now: () => performance.now(),
    finishing: () => finishing,
    drainWaitMs: hangGuardMs(30000),
  });
  return async () => {
    const r = await finish();
    return { kind: 'stream', ok: r.ok, bytes: r.sent.bytes + r.echoed.bytes, stall: r.stall, sent: r.sent, echoed: r.echoed, error: r.error };
  };
}

async function requestConnection(address: string): Promise<() => Promise<ConnectionResult>> {
  const socket = await connect(address);
  socket.setNoDelay(true);
  socket.write('RR\n');
  let n = 0;
  let outstanding: { n: number; body: string; at: number } | null = null;
  let stall = 0;
  let answered = 0;
  let wrong = 0;
  let bytes = 0;
  let partial = '';
  let error: string | undefined;
  socket.on('error', (e) => (error ??= `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`));
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    const lines = (partial + chunk.toString('latin1')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [, k, digest] = /^RES (\d+) ([0-9a-f]{64})$/.exec(line) ?? [];
      if (!outstanding || Number(k) !== outstanding.n || digest !== createHash('sha256').update(outstanding.body).digest('hex')) {
        wrong++;
        continue;
      }
      stall = Math.max(stall, performance.now() - outstanding.at);
      answered++;
      outstanding = null;
    }
  });
  const ticker = setInterval(() => {
    if (finishing || outstanding) return;
    const body = randomBytes(24).toString('hex');
    outstanding = { n: ++n, body, at: performance.now() };
    const line = `REQ ${n} ${body}\n`;
    bytes += line.length;
    socket.write(line);
  }, config.requestIntervalMs);
  return async () => {
    clearInterval(ticker);
    const deadline = Date.now() + hangGuardMs(30000);
    while (outstanding && Date.now() < deadline && error === undefined) await new Promise((r) => setTimeout(r, 20));
    const ok = error === undefined && wrong === 0 && outstanding === null && answered > 0;
    socket.destroy();
    return { kind: 'rr', ok, bytes, stall, error: error ?? (ok ? undefined : `${wrong} wrong answers, ${answered} right, ${outstanding ? 'one unanswered' : 'none outstanding'}`) };
  };
}

async function main(): Promise<void> {
  for (let i = 0; i < config.connections; i++) {
    const address = config.addresses[i % config.addresses.length]!;
    waiters.push(await (i < config.streams ? streamConnection(address) : requestConnection(address)));
  }
  send({ connected: config.connections });
  process.on('message', async (message: { cmd: string }) => {
    if (message.cmd !== 'finish') return;
    finishing = true;
    const results = await Promise.all(waiters.map((finish) => finish()));
    send({ results });
    process.exit(0);
  });
}

main().catch((error: unknown) => {
  send({ fatal: (error as Error).stack ?? String(error) });
  process.exit(1);
});
