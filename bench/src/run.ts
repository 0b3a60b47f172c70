/**
 * `npm run bench`: per-socket cost against the C reference (bench/reference.c) and host-to-host
 * moves between network namespaces. Prints the tables, writes bench/results/<date>.json (machine,
 * kernel, Node version, date, every sample) and an SVG plot of cost against N.
 *
 *   --quick              a smaller run (N = 1 and 100, fewer repetitions; host-to-host N = 1, 100)
 *   --only local|host    one half only
 *   --runs K             repetitions per configuration (default: more for small N)
 *   --connections 1,100  the N to measure
 *   --out DIR            where results go (default bench/results)
 *   --docs               also write the plot to docs/bench.svg
 *   --steps              also run the C reference once with per-call timing and print it
 *   --profile DIR        write CPU profiles (.cpuprofile) of the Node processes measured to DIR
 *   --syscalls           instead of measuring, check (with strace) that the C reference makes the
 *                        same kernel calls as the library
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo } from './machine.js';
import { measureOnce } from './local.js';
import { runLocalSuite, type LocalResult } from './local-suite.js';
import { hostTables, localTables } from './report.js';
import { runHostSuite, type HostResult } from './host-suite.js';
import { renderPlot } from './svg.js';
import { table } from './table.js';
import { WORKLOADS } from './workload.js';
import { compareSyscalls } from './syscalls.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    connections: { type: 'string' },
    out: { type: 'string', default: path.join(root, 'bench', 'results') },
    docs: { type: 'boolean', default: false },
    steps: { type: 'boolean', default: false },
    syscalls: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});

function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${text}`);
  else process.stderr.write(`${text}\n`);
}

function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
}

/** More repetitions where one run measures few sockets (and noise weighs more). */
function defaultRuns(connections: number, quick: boolean): number {
  if (quick) return connections <= 1 ? 3 : 2;
  if (connections <= 1) return 21;
  if (connections <= 100) return 11;
  if (connections <= 1000) return 7;
  return 5;
}

function buildReference(): string {
  const binary = path.join(root, 'dist', 'bench', 'reference');
  mkdirSync(path.dirname(binary), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-o', binary, path.join(root, 'bench', 'reference.c')], { stdio: 'inherit' });
  return binary;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (network namespaces, TCP_REPAIR)');
  const quick = values.quick === true;
  if (values.profile) {
    mkdirSync(values.profile, { recursive: true });
    process.env.TCP_REPAIR_BENCH_PROFILE = path.resolve(values.profile);
  }
  const only = values.only;
  const connections = values.connections
    ? values.connections.split(',').map(Number)
    : quick ? [1, 100] : [1, 100, 1000, 10000];
  const started = new Date();
  const machine = machineInfo();
  const referenceBinary = buildReference();
  if (values.syscalls) {
    let same = true;
    for (const workload of WORKLOADS) {
      const comparison = await compareSyscalls(referenceBinary, workload);
      process.stdout.write(comparison.text + '\n\n');
      same &&= comparison.same;
    }
    if (!same) throw new Error('the C reference and the library make different kernel calls: bring bench/reference.c in step');
    return;
  }
  process.stdout.write(`tcp-repair bench, ${started.toISOString()}: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}, load ${machine.loadAverage}${quick ? ' (quick)' : ''}\n\n`);

  let local: LocalResult[] = [];
  if (only === undefined || only === 'local') {
    const runs = Object.fromEntries(connections.map((n) => [n, values.runs ? Number(values.runs) : defaultRuns(n, quick)]));
    local = await runLocalSuite({ runs, workloads: WORKLOADS }, { referenceBinary }, progress);
    progressDone();
    process.stdout.write(localTables(local) + '\n\n');
  }
  let host: HostResult[] = [];
  if (only === undefined || only === 'host') {
    const hostRuns = Object.fromEntries(connections.map((n) => [n, values.runs ? Number(values.runs) : quick ? 1 : 3]));
    host = await runHostSuite({ runs: hostRuns, ipv6: true }, progress);
    progressDone();
    process.stdout.write(hostTables(host) + '\n\n');
  }
  if (values.steps) {
    progress('C reference, per call…');
    const n = Math.max(...connections.filter((c) => c <= 1000));
    const sample = await measureOnce('c', n, 'queued', { referenceBinary, steps: true });
    progressDone();
    const rows = Object.entries(sample.steps ?? {})
      .sort((a, b) => b[1].ns - a[1].ns)
      .map(([name, s]) => [name, (s.calls / n).toFixed(1), (s.ns / s.calls).toFixed(0), (s.ns / n / 1000).toFixed(2)]);
    process.stdout.write(`C reference per call (N=${n}, queued; clock reads around each call add ~50 ns)\n\n${table(['call', 'per socket', 'ns per call', 'µs per socket'], rows)}\n\n`);
  }

  const result = {
    schema: 'tcp-repair-bench/1',
    date: started.toISOString(),
    quick,
    machine,
    local: local.length > 0 ? { unit: 'µs per socket', results: local } : null,
    host: host.length > 0 ? { unit: 'ms', results: host } : null,
  };
  mkdirSync(values.out!, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const jsonFile = path.join(values.out!, `${stamp}.json`);
  writeFileSync(jsonFile, JSON.stringify(result, null, 2) + '\n');
  const svg = renderPlot(result);
  const svgFile = path.join(values.out!, `${stamp}.svg`);
  writeFileSync(svgFile, svg);
  if (values.docs) writeFileSync(path.join(root, 'docs', 'bench.svg'), svg);
  process.stdout.write(`results: ${jsonFile}\nplot:    ${svgFile}${values.docs ? ' (and docs/bench.svg)' : ''}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    progressDone();
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
