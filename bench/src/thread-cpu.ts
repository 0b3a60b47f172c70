/**
 * CPU time of this process's main thread, which Node 20 does not expose: the process total
 * (getrusage, exact for the calling thread) minus what the other threads (V8's GC and compiler
 * helpers, libuv's pool) have used, from /proc/self/task/<tid>/schedstat (exact for a thread that
 * is not running at that instant, as helpers mostly are not).
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';

const scratch = Buffer.alloc(128);

function helperThreadsNs(): number {
  let total = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    if (Number(tid) === process.pid) continue;
    let fd: number;
    try {
      fd = openSync(`/proc/self/task/${tid}/schedstat`, 'r');
    } catch {
      continue; // the thread ended
    }
    try {
      const n = readSync(fd, scratch, 0, scratch.length, 0);
      total += Number(scratch.toString('latin1', 0, n).split(' ')[0]);
    } finally {
      closeSync(fd);
    }
  }
  return total;
}

function processNs(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) * 1000;
}

export interface CpuMark {
  /** Main thread, ns. */
  main: number;
  /** Whole process, ns. */
  process: number;
}

/**
 * Two readings around the helpers' accounting: the first closes the phase that ends here, the
 * second opens the next one, so the cost of reading /proc is in neither.
 */
export function cpuMark(): { end: CpuMark; start: CpuMark } {
  const before = processNs();
  const helpers = helperThreadsNs();
  const after = processNs();
  return { end: { main: before - helpers, process: before }, start: { main: after - helpers, process: after } };
}
