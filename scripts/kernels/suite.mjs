// Runs the probe and the tap suite (all of it or a part) on one kernel of the matrix: inside a
// guest through bootVm() for the Debian kernels, directly for the host kernel. The same shell
// command runs in both places, so the columns of the matrix differ only by kernel. Its output is
// the probe's JSON and the raw TAP stream between marker lines that carry exit codes and times.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CACHE, ROOT } from './kernels.mjs';
import { transpileTests } from './transpile.mjs';
import { summarizeTap } from './tap-summary.mjs';
import { bootUml } from './uml.mjs';
import { bootVm } from './vm.mjs';

/**
 * The kernel-facing part of the suite: what exercises TCP_REPAIR and the socket calls directly
 * (primitives, checkpoint/restore, the smoke test). test/primitives/build.test.ts is left out: it
 * compiles the addon with cmake-js (40 s on the host, far longer under TCG) and tests the build,
 * not the kernel.
 */
export const KERNEL_FACING = [
  'test/primitives/batch.test.ts', 'test/primitives/errors.test.ts', 'test/primitives/queues.test.ts',
  'test/primitives/repair-mode.test.ts', 'test/primitives/restore.test.ts', 'test/primitives/sockets-options.test.ts',
  'test/checkpoint', 'test/smoke.test.ts',
];

/** Every test file of the suite except the kernel matrix's own (a guest does not boot guests). */
export function fullSuite() {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir).sort()) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.test.ts')) files.push(relative(ROOT, p));
    }
  };
  walk(join(ROOT, 'test'));
  // Kernel-facing files first: a run cut short by its deadline has covered the kernel the most.
  // Then the slowest files, so that in a guest running two files at a time the long ones overlap
  // the many short ones instead of running alone at the end.
  const first = expandFiles(KERNEL_FACING);
  const slow = SLOWEST_IN_GUESTS.filter((f) => files.includes(f) && !first.includes(f));
  return [...first, ...slow, ...files.filter((f) => !f.startsWith('test/kernels/') && !first.includes(f) && !slow.includes(f))];
}

/**
 * The files that take longest under TCG, longest first (per-file times of the 2026-12-05 run in
 * docs/kernels/<kernel>.json, `fileTimes`, 6.1 / 6.12, s): the package test installs and compiles the
 * packed tarball (1267 / 1183), the Node lines rebuild the addon and run a subset of the suite each
 * (node22 1049 / 1119, node24 679 / 887), the soak with 20 moves per level in guests (341 / 670, run
 * alone), then the fault tests, the demo and the bench (200–600 each).
 */
export const SLOWEST_IN_GUESTS = [
  'test/package.test.ts', 'test/node-lines/node22.test.ts', 'test/node-lines/node24.test.ts',
  'test/reliability/soak.test.ts', 'test/reliability/channel-faults.test.ts', 'test/migrate/demo.test.ts',
  'test/bench.test.ts',
];

/**
 * The shell command a column runs: probe, then the tests. On the host: tap over the .ts files, as
 * `npm test` does. In a guest (guestJs: the directory transpile.mjs wrote): the transpiled files are
 * copied next to the .ts ones in the guest's writable overlay and guest-run.mjs runs them.
 */
export function suiteCommand(files, { guestJs, jobs = 2, fileTimeoutS = 900, tapArgs = [] } = {}) {
  const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const run = guestJs
    ? `cp -a ${q(join(guestJs, 'test'))}/. test/ && node scripts/kernels/guest-run.mjs --jobs ${jobs} --timeout ${fileTimeoutS} ${files.map((f) => q(f.replace(/\.ts$/, '.js'))).join(' ')}`
    : `node_modules/.bin/tap --reporter=tap ${tapArgs.map(q).join(' ')} ${files.map(q).join(' ')}`;
  return [
    'ms() { echo $(( $(date +%s%N) / 1000000 )); }',
    'echo "@@PROBE-BEGIN@@"',
    'p0=$(ms); node dist/esm/cli.js probe --json; prc=$?; p1=$(ms)',
    'echo "@@PROBE-END rc=$prc ms=$((p1 - p0))@@"',
    `t0=$(ms); ${run}; rc=$?; t1=$(ms)`,
    'echo "@@SUITE-END rc=$rc ms=$((t1 - t0))@@"',
    'exit $rc',
  ].join('\n');
}

/** Expands directories in a file list to the test files under them (guest-run takes files). */
export function expandFiles(files) {
  const out = [];
  for (const f of files) {
    const p = join(ROOT, f);
    if (statSync(p).isDirectory()) {
      const walk = (dir) => {
        for (const entry of readdirSync(dir).sort()) {
          const x = join(dir, entry);
          if (statSync(x).isDirectory()) walk(x);
          else if (x.endsWith('.test.ts')) out.push(relative(ROOT, x));
        }
      };
      walk(p);
    } else out.push(f);
  }
  return out;
}

/** Splits the command's output into probe report, TAP and timings. */
export function parseSuiteOutput(output) {
  const begin = output.indexOf('@@PROBE-BEGIN@@\n');
  const pend = /@@PROBE-END rc=(\d+) ms=(\d+)@@\n/.exec(output);
  const send = /@@SUITE-END rc=(\d+) ms=(\d+)@@/.exec(output);
  let probe = null;
  let probeError = null;
  if (begin !== -1 && pend) {
    try {
      probe = JSON.parse(output.slice(begin + 16, pend.index));
    } catch (error) {
      probeError = `${error.message}: ${output.slice(begin + 16, pend.index).slice(0, 500)}`;
    }
  } else probeError = 'no probe output';
  const tapText = pend ? output.slice(pend.index + pend[0].length, send ? send.index : undefined) : output;
  return {
    probe,
    probeError,
    probeMs: pend ? Number(pend[2]) : null,
    tapExit: send ? Number(send[1]) : null,
    suiteMs: send ? Number(send[2]) : null,
    tap: summarizeTap(tapText),
    tapText,
  };
}

/**
 * Runs one column. kernel: a descriptor from ensureKernel, or 'host'. Resolves with timings, the
 * probe report and the TAP summary; `ok` is true when the probe ran and tap passed every test.
 */
export async function runColumn(kernel, files, options = {}) {
  files = expandFiles(files);
  const guestJs = kernel === 'host' ? null : mkdtempSync(join(CACHE, 'tests-js-'));
  try {
    if (guestJs) transpileTests(guestJs);
    return await runColumnWith(kernel, files, suiteCommand(files, { guestJs, jobs: options.jobs, fileTimeoutS: options.fileTimeoutS, tapArgs: options.tapArgs }), options);
  } finally {
    if (guestJs) rmSync(guestJs, { recursive: true, force: true });
  }
}

async function runColumnWith(kernel, files, command, options) {
  // In guests every instruction is emulated: deadlines that guard against hangs are stretched
  // (test/helpers/time-scale.ts), assertions about what the kernel did are not.
  const env = kernel === 'host' ? { TCP_REPAIR_KERNEL_MATRIX: 'host' } : { TCP_REPAIR_KERNEL_MATRIX: kernel.name, TCP_REPAIR_TIME_SCALE: '10' };
  let result;
  if (kernel === 'host') {
    const started = Date.now();
    result = await new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const add = (d) => { output += d; options.onOutput?.(String(d)); };
      child.stdout.on('data', add);
      child.stderr.on('data', add);
      child.once('close', (code) => resolve({ exitCode: code, output, console: '', bootMs: 0, commandMs: Date.now() - started, totalMs: Date.now() - started, timedOut: false }));
    });
  } else {
    const boot = () => (kernel.uml ? bootUml : bootVm)({
      kernel,
      command,
      cwd: ROOT,
      env,
      timeoutMs: options.timeoutMs ?? 3_600_000,
      memoryMiB: options.memoryMiB ?? 3072,
      cpus: options.cpus ?? 2,
      userNet: kernel.uml ? false : options.userNet ?? false,
      onOutput: options.onOutput,
      onConsole: options.onConsole,
    });
    result = await boot();
    // A guest that died before its command started is a failed boot, not a test result: seen
    // once, 6.12 under multi-threaded TCG oopsed on an int3 in sched_clock_cpu while patching
    // its own text at boot. Booted again once; the first console is kept for the record.
    if (result.bootMs === null && !result.timedOut) {
      const first = result.console;
      result = await boot();
      result.firstBootConsole = first;
    }
  }
  const parsed = parseSuiteOutput(result.output);
  const ok = result.exitCode === 0 && parsed.probe !== null && parsed.tap.complete && parsed.tap.fail === 0;
  return { kernel: kernel === 'host' ? 'host' : kernel.name, ok, vm: result, ...parsed };
}
