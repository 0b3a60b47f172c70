/**
 * `npm run bench -- --syscalls`: checks that the C reference makes the same kernel calls as the
 * library. Both measured programs run one cycle (checkpoint all, release all, restore all) under
 * strace, attached only for that cycle; each call is reduced to its name and the option or
 * request it names, and the per-socket counts are compared. Needs strace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LineReader } from './lines.js';
import { nextLine, nextMessage } from './ipc.js';
import { LOCAL_ADDRESS, type Implementation } from './local.js';
import { Namespace } from './netns.js';
import { table } from './table.js';
import { RECV_BYTES, SEND_BYTES, type Workload } from './workload.js';
import { execFileSync } from 'node:child_process';

/** Calls that are the runtime's business, not the checkpoint's (memory, the event loop, stdio). */
const NOISE = /^(futex|mmap|munmap|mprotect|madvise|brk|epoll_pwait|epoll_wait|write|writev|read|readv|clock_gettime|getpid|rt_sig\w+|sched_yield|statx|openat|newfstatat|access|gettid|exit_group|mremap|prctl|getrandom)$/;

/** Differences that are not the library's doing, and why. */
const EXPECTED: Record<string, string> = {
  'epoll_ctl(EPOLL_CTL_ADD)': 'libuv registers the adopted fd on the next loop turn, after the timed restore',
};

/**
 * `setsockopt(21, SOL_TCP, TCP_REPAIR, [1], 4) = 0` → `setsockopt(SOL_TCP, TCP_REPAIR)`. A call
 * interrupted by another thread's is split by strace ("<unfinished ...>", then "resumed"):
 * it is counted from its first half.
 */
export function normalise(line: string): string | null {
  const m = /^(?:\d+\s+)?(\w+)\((.*?)(?:\)\s+=\s+(?:-?\d+|\?).*| <unfinished \.\.\.>)$/.exec(line);
  if (!m) return null;
  const [, name, args] = m as unknown as [string, string, string];
  // glibc's fstat() is newfstatat(fd, "", …, AT_EMPTY_PATH); libuv calls fstat itself.
  if (name === 'newfstatat' && /AT_EMPTY_PATH/.test(args)) return 'fstat';
  if (NOISE.test(name)) return null;
  const parts = args.split(', ');
  switch (name) {
    case 'setsockopt':
    case 'getsockopt':
      return `${name}(${parts[1]}, ${parts[2]})`;
    case 'ioctl':
      return `ioctl(${parts[1]})`;
    case 'epoll_ctl':
      return `epoll_ctl(${parts[1]})`;
    case 'recvfrom':
      return `recvfrom(${/MSG_PEEK/.test(args) ? 'MSG_PEEK' : 'data'})`;
    case 'sendto':
      // Refills are non-blocking; the one-byte proof after the restore (C) is not a restore call.
      return /MSG_DONTWAIT/.test(args) ? 'sendto(repair queue)' : null;
    case 'socket':
    case 'bind':
    case 'connect':
    case 'close':
    case 'fstat':
    case 'getsockname':
    case 'getpeername':
    case 'shutdown':
      return name;
    default:
      return name;
  }
}

function countCalls(file: string, sockets: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const call = normalise(line);
    if (call) counts.set(call, (counts.get(call) ?? 0) + 1 / sockets);
  }
  return counts;
}

async function traceOnce(impl: Implementation, sockets: number, workload: Workload, referenceBinary: string, outFile: string): Promise<Map<string, number>> {
  const ns = new Namespace('syscalls');
  let strace: ChildProcess | null = null;
  try {
    execFileSync('ip', ['-n', ns.name, 'addr', 'add', `${LOCAL_ADDRESS}/32`, 'dev', 'lo']);
    const peer = ns.fork('peer');
    await nextMessage(peer, 'started', 'peer start', 30_000);
    const args = [LOCAL_ADDRESS, String(sockets), workload];
    const measured = impl === 'c' ? ns.spawn(referenceBinary, args) : ns.fork('local-worker', args, ['--expose-gc']);
    const out = new LineReader(measured.stdout!);
    const port = Number(/^listening (\d+)$/.exec(await nextLine(out, 'listening', 30_000))?.[1]);
    peer.send({ connect: { address: LOCAL_ADDRESS, port, count: sockets, sendBytes: workload === 'queued' ? RECV_BYTES : 0 } });
    await nextMessage(peer, 'connected', 'peer connections', 30_000);
    measured.stdin!.write('prepare\n');
    await nextLine(out, 'ready', 30_000);
    // `ip netns exec` execs the program: the pid is the measured process itself.
    strace = spawn('strace', ['-f', '-qq', '-o', outFile, '-p', String(measured.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise((resolve) => setTimeout(resolve, 500)); // attach
    measured.stdin!.write('go\n');
    await nextLine(out, 'released', 30_000);
    peer.send({ lift: true });
    await nextMessage(peer, 'lifted', 'peer filters lifted', 30_000);
    measured.stdin!.write('restore\n');
    await nextLine(out, 'result', 30_000);
    peer.send({ verify: { bytes: (workload === 'queued' ? SEND_BYTES : 0) + 1, timeoutMs: 20_000 } });
    await nextMessage(peer, 'verified', 'peer verification', 30_000);
    strace.kill('SIGINT');
    await new Promise((resolve) => strace!.once('exit', resolve));
    strace = null;
    measured.stdin!.end();
    return countCalls(outFile, sockets);
  } finally {
    strace?.kill('SIGKILL');
    ns.destroy();
  }
}

export async function compareSyscalls(referenceBinary: string, workload: Workload): Promise<{ text: string; same: boolean }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tcp-repair-syscalls-'));
  // The worker's CPU-time readings are syscalls of the bench, not of the library.
  process.env.TCP_REPAIR_BENCH_WALL_ONLY = '1';
  try {
    const sockets = 20;
    const c = await traceOnce('c', sockets, workload, referenceBinary, path.join(dir, 'c.txt'));
    const node = await traceOnce('node', sockets, workload, referenceBinary, path.join(dir, 'node.txt'));
    const names = [...new Set([...c.keys(), ...node.keys()])].sort();
    const rows = names.map((name) => {
      const a = c.get(name) ?? 0;
      const b = node.get(name) ?? 0;
      return [name, a.toFixed(2), b.toFixed(2), Math.abs(a - b) < 0.01 ? '' : (EXPECTED[name] ?? 'DIFFERS')];
    });
    const differing = rows.filter((r) => r[3] === 'DIFFERS');
    const total = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);
    const text = `Kernel calls per socket, one cycle (checkpoint, release, restore; ${workload}, ${sockets} sockets)\n\n${table(['call', 'C reference', 'library', ''], rows)}\n\ntotal: C ${total(c).toFixed(1)}, library ${total(node).toFixed(1)} per socket`;
    return { text, same: differing.length === 0 };
  } finally {
    delete process.env.TCP_REPAIR_BENCH_WALL_ONLY;
    rmSync(dir, { recursive: true, force: true });
  }
}
