/**
 * The clients of the host-to-host bench, run inside the client namespace: many connections to
 * the service address speaking the demo's protocol. A few stream until told to finish (16 KiB
 * every 10 ms, every byte echoed, sha256 of both directions compared); the rest are request/response connections that send one request
 * every `intervalMs` (each starting at a random phase, so requests are spread in time) and keep
 * each request's send and answer times. Told where the freeze was, the client tells apart the
 * connections that had a request in flight during it from those that were idle.
 *   argv: <json config>;  IPC: → { connected }, { finish: { freeze } } → { results }
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { wallClock } from './clock.js';
import { startEchoStream } from '../../dist/esm/demo/echo-stream.js';

interface Config {
  addresses: string[];
  port: number;
  connections: number;
  streams: number;
  streamBytes: number;
  intervalMs: number;
}

interface Request {
  sentAt: number;
  answeredAt: number | null;
}

/** What one connection saw. Times are wall-clock ms (clock.ts). */
export interface ClientConnectionResult {
  kind: 'stream' | 'rr';
  ok: boolean;
  error?: string;
  /** Longest wait with something outstanding (ms): the stall this connection saw. */
  stall: number;
  /** rr only: a request was in flight at some point of the freeze. */
  busy?: boolean;
  /** rr only, idle connections: answer time of the first request sent after the freeze (ms). */
  firstAfter?: number;
  /** rr only, busy connections: how long after the freeze ended the answer came (ms). */
  afterFreeze?: number;
  bytes: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: unknown) => process.send?.(message);
let finishing = false;
type Finisher = (freeze: { start: number; end: number }) => Promise<ClientConnectionResult>;
const finishers: Finisher[] = [];
const CONNECT_CONCURRENCY = 64;

function connect(address: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port: config.port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function streamConnection(address: string): Promise<Finisher> {
  const socket = await connect(address);
  const finish = startEchoStream(socket, {
    totalBytes: config.streamBytes,
    intervalMs: 10,
    now: wallClock,
    finishing: () => finishing,
    drainWaitMs: 30_000,
  });
  return async () => {
    const r = await finish();
    return { kind: 'stream', ok: r.ok, stall: r.stall, bytes: r.sent.bytes + r.echoed.bytes, error: r.error };
  };
}

async function requestConnection(address: string): Promise<Finisher> {
  const socket = await connect(address);
  socket.setNoDelay(true);
  socket.write('RR\n');
  const requests: Request[] = [];
  let outstanding: { n: number; digest: string; request: Request } | null = null;
  let wrong = 0;
  let bytes = 0;
  let partial = '';
  let error: string | undefined;
  let n = 0;
  socket.on('error', (e: NodeJS.ErrnoException) => (error ??= `${e.code ?? ''} ${e.message}`));
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    const lines = (partial + chunk.toString('latin1')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [, k, digest] = /^RES (\d+) ([0-9a-f]{64})$/.exec(line) ?? [];
      if (!outstanding || Number(k) !== outstanding.n || digest !== outstanding.digest) {
        wrong++;
        continue;
      }
      outstanding.request.answeredAt = wallClock();
      outstanding = null;
    }
  });
  const ask = () => {
    if (finishing || outstanding || error !== undefined) return;
    const body = randomBytes(24).toString('hex');
    const request: Request = { sentAt: wallClock(), answeredAt: null };
    requests.push(request);
    outstanding = { n: ++n, digest: createHash('sha256').update(body).digest('hex'), request };
    const line = `REQ ${n} ${body}\n`;
    bytes += line.length;
    socket.write(line);
  };
  let timer: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    ask();
    timer = setInterval(ask, config.intervalMs);
  }, Math.random() * config.intervalMs);
  return async (freeze) => {
    clearTimeout(first);
    clearInterval(timer);
    const deadline = Date.now() + 30_000;
    while (outstanding && Date.now() < deadline && error === undefined) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    const answered = requests.filter((r) => r.answeredAt !== null);
    const ok = error === undefined && wrong === 0 && outstanding === null && answered.length > 0;
    const wait = (r: Request) => r.answeredAt! - r.sentAt;
    const inFreeze = answered.filter((r) => r.sentAt < freeze.end && r.answeredAt! > freeze.start);
    const after = answered.filter((r) => r.sentAt >= freeze.end);
    const result: ClientConnectionResult = {
      kind: 'rr',
      ok,
      stall: Math.max(0, ...answered.map(wait)),
      busy: inFreeze.length > 0,
      bytes,
      error: error ?? (ok ? undefined : `${wrong} wrong answers, ${answered.length} right, ${outstanding ? 'one unanswered' : 'none outstanding'}`),
    };
    if (inFreeze.length > 0) result.afterFreeze = Math.max(...inFreeze.map((r) => r.answeredAt! - freeze.end));
    else if (after[0]) result.firstAfter = wait(after[0]);
    return result;
  };
}

async function main(): Promise<void> {
  let next = 0;
  const opened: Array<Finisher | undefined> = new Array(config.connections);
  const worker = async () => {
    while (next < config.connections) {
      const i = next++;
      const address = config.addresses[i % config.addresses.length]!;
      opened[i] = await (i < config.streams ? streamConnection(address) : requestConnection(address));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, config.connections) }, worker));
  finishers.push(...(opened as Finisher[]));
  send({ connected: config.connections });
  process.on('message', (message: { finish?: { freeze: { start: number; end: number } } }) => {
    if (!message.finish) return;
    finishing = true;
    const { freeze } = message.finish;
    void Promise.all(finishers.map((finish) => finish(freeze))).then((results) => {
      // Exit only once the (large) message is out.
      process.send?.({ results }, () => process.exit(0));
    });
  });
}

main().catch((error: unknown) => {
  send({ fatal: (error as Error).stack ?? String(error) });
  process.exit(1);
});
