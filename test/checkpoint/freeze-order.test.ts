/**
 * The freeze lock's order, read from the system calls a checkpoint makes (strace): the drop
 * filter goes on, then one RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL)), and only then
 * TCP_REPAIR and the first read of a sequence number. Reading before the grace period lets a
 * segment that passed the filter just before it went on be acknowledged without being in the
 * image (src/freeze-lock.ts). A batch (lockForCheckpoint) has every filter, then one grace
 * period, then the checkpoints with none of their own.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../fixtures/freeze-order.mjs', import.meta.url));

/** The calls that matter, in order, each reduced to a short name. */
function steps(trace: string, from: string, to: string): string[] {
  const lines = trace.split('\n');
  const start = lines.findIndex((l) => l.includes(`/tcp-repair-marker/${from}`));
  const end = lines.findIndex((l) => l.includes(`/tcp-repair-marker/${to}`));
  if (start < 0 || end < start) throw new Error(`markers ${from}/${to} not found in the trace:\n${trace.slice(-3000)}`);
  const out: string[] = [];
  for (const line of lines.slice(start + 1, end)) {
    if (/SO_ATTACH_(BPF|FILTER)/.test(line)) out.push('attach');
    else if (/membarrier\(MEMBARRIER_CMD_GLOBAL/.test(line)) out.push('grace');
    else if (/setsockopt\(\d+, SOL_TCP, TCP_REPAIR, \[1\]/.test(line)) out.push('repair-on');
    else if (/getsockopt\(\d+, SOL_TCP, TCP_QUEUE_SEQ/.test(line)) out.push('read-seq');
  }
  return out;
}

/** Drops repeated neighbours: [a, a, b] -> [a, b]. */
const squeeze = (list: string[]) => list.filter((s, i) => s !== list[i - 1]);

t.test('checkpoint: filter, grace period, repair on, then reads; a batch waits once', (t) => {
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=access,faccessat,faccessat2,setsockopt,getsockopt,membarrier', process.execPath, FIXTURE], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.error, undefined, 'strace ran (installed by scripts/system-deps.sh)');
  t.equal(r.status, 0, 'the fixture exited 0');
  t.equal(r.stdout.trim(), 'done', 'the fixture finished');
  const trace = r.stderr;

  const single = steps(trace, 'single-start', 'single-end');
  t.same(squeeze(single), ['attach', 'grace', 'repair-on', 'read-seq'], `one socket: ${single.join(' ')}`);

  const batch = steps(trace, 'batch-start', 'batch-end');
  t.same(batch.slice(0, 4), ['attach', 'attach', 'attach', 'grace'], 'a batch: three filters, then one grace period');
  t.equal(batch.filter((s) => s === 'grace').length, 1, 'one grace period for the three checkpoints');
  t.equal(batch.filter((s) => s === 'repair-on').length, 3, 'each socket goes into repair after it');
  t.equal(batch.filter((s) => s === 'attach').length, 3, 'no checkpoint attaches a filter again');
  t.end();
});
