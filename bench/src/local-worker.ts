/**
 * The Node side of the per-socket measurement: what bench/reference.c does, through the
 * library. Same line protocol on stdin/stdout (see reference.c), plus the image codec:
 *   checkpoint all → encode all → release all | decode all → restore all (from the decoded
 *   images, after the originals were released: the situation of a restore in another process
 *   or on another host, without the same-process hand-over).
 * Before "listening" the code is warmed up on throw-away connections, so the figures are those
 * of a process that has checkpointed before (the JIT has compiled the paths); `--cold` skips it.
 */
import net from 'node:net';
import { once } from 'node:events';
import { checkpoint, lockForCheckpoint, decodeImage, encodeImage, release, restore, socketFd, type SocketImage } from 'tcp-repair';
import { LineReader } from './lines.js';
import { cpuMark } from './thread-cpu.js';
import { PROOF, RECV_BYTES, prepareQueued, silencePeer, type Workload } from './workload.js';

const [address = '127.0.0.1', countText = '1', workloadText = 'idle', ...flags] = process.argv.slice(2);
const count = Number(countText);
const workload = workloadText as Workload;
const WARMUP_CONNECTIONS = 300;
const WARMUP_ROUNDS = 10;

async function accept(server: net.Server, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  if (n === 0) return sockets;
  await new Promise<void>((resolve) => {
    const onConnection = (socket: net.Socket) => {
      sockets.push(socket);
      if (sockets.length === n) {
        server.off('connection', onConnection);
        resolve();
      }
    };
    server.on('connection', onConnection);
  });
  return sockets;
}

async function listen(): Promise<net.Server> {
  // Paused: unread bytes stay in the kernel receive queue, where the C reference finds them.
  const server = net.createServer({ pauseOnConnect: true });
  server.listen({ host: address, port: 0, backlog: 4096 });
  await once(server, 'listening');
  return server;
}

/**
 * Full cycles on connections made inside this process, for both workloads, until V8 has
 * optimised the paths (each restored set is checkpointed again; a few hundred calls are not
 * enough for TurboFan, measured with --trace-opt).
 */
async function warmUp(): Promise<void> {
  const server = await listen();
  const { port } = server.address() as net.AddressInfo;
  for (const kind of ['idle', 'queued'] as const) {
    const accepted = accept(server, WARMUP_CONNECTIONS);
    const clients: net.Socket[] = [];
    for (let i = 0; i < WARMUP_CONNECTIONS; i++) {
      const client = net.connect({ host: address, port });
      client.on('error', () => {});
      await once(client, 'connect');
      if (kind === 'queued') {
        client.write(Buffer.alloc(RECV_BYTES, 1));
        await silencePeer(socketFd(client));
      }
      clients.push(client);
    }
    let sockets = await accepted;
    if (kind === 'queued') await prepareQueued(sockets);
    for (let round = 0; round < WARMUP_ROUNDS; round++) sockets = await cycle(sockets);
    for (const s of [...sockets, ...clients]) s.destroy();
  }
  server.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  (globalThis as { gc?: () => void }).gc?.();
}

type Timings = Record<string, number>;

let last: Timings | null = null;

/**
 * checkpoint → encode → release, then `between()` (the driver lets the peers talk again), then
 * decode → restore. Each phase is timed on its own.
 */
async function cycle(sockets: net.Socket[], between: () => Promise<void> = async () => {}): Promise<net.Socket[]> {
  const images: SocketImage[] = [];
  const t0 = clocks();
  // One batch lock (filters, one grace period), as migrate() does and the C reference too.
  lockForCheckpoint(sockets);
  for (const socket of sockets) images.push(await checkpoint(socket));
  const t1 = clocks();
  const encoded = images.map((image) => encodeImage(image));
  const t2 = clocks();
  for (const image of images) release(image);
  const t3 = clocks();
  await between();
  const t3b = clocks();
  const decoded = encoded.map((bytes) => decodeImage(bytes));
  const t4 = clocks();
  const restored = decoded.map((image) => restore(image));
  const t5 = clocks();
  const phase = (from: Clocks, to: Clocks) => ({
    wall: to.wall - from.wall,
    cpu: to.cpu.end.main - from.cpu.start.main,
    processCpu: to.cpu.end.process - from.cpu.start.process,
  });
  const p = { checkpoint: phase(t0, t1), encode: phase(t1, t2), release: phase(t2, t3), decode: phase(t3b, t4), restore: phase(t4, t5) };
  last = {
    ...Object.fromEntries(Object.entries(p).flatMap(([name, v]) => [[`${name}Ns`, v.wall], [`${name}CpuNs`, v.cpu], [`${name}ProcessCpuNs`, v.processCpu]])),
    imageBytes: encoded.reduce((n, b) => n + b.length, 0),
    payloadBytes: images.reduce((n, i) => n + i.recvQueue.length + i.sentUnacked.length + i.unsent.length, 0),
  };
  return restored;
}

interface Clocks {
  wall: number;
  cpu: ReturnType<typeof cpuMark>;
}

/**
 * Wall clock, and CPU time of the main thread and of the whole process (GC and JIT helpers too),
 * ns. TCP_REPAIR_BENCH_WALL_ONLY=1 skips the CPU readings (their /proc reads are syscalls too,
 * which `--syscalls` must not count).
 */
const wallOnly = process.env.TCP_REPAIR_BENCH_WALL_ONLY === '1';
function clocks(): Clocks {
  const cpu = wallOnly ? { end: { main: 0, process: 0 }, start: { main: 0, process: 0 } } : cpuMark();
  return { wall: performance.now() * 1e6, cpu };
}

async function main(): Promise<void> {
  if (!flags.includes('--cold')) await warmUp();
  const stdin = new LineReader(process.stdin);
  const server = await listen();
  const accepted = accept(server, count);
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
  const sockets = await accepted;
  server.close();
  if ((await stdin.next()) === null) return; // "prepare": the peers are connected and silent
  if (workload === 'queued') await prepareQueued(sockets);
  process.stdout.write('ready\n');
  if ((await stdin.next()) === null) return;
  const restored = await cycle(sockets, async () => {
    process.stdout.write('released\n');
    await stdin.next();
  });
  process.stdout.write(JSON.stringify(last) + '\n');
  for (const socket of restored) {
    socket.on('error', () => {});
    socket.write(PROOF);
  }
  while ((await stdin.next()) !== null) {
    // wait for the driver to finish with the peer
  }
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`local-worker: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
