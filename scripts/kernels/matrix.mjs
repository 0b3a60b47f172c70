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
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
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

const results = [];

async function runOne(column) {
  const kernel = column === 'host' ? 'host' : column === '6.1um' ? ensureUml() : ensureKernel(column);
  process.stderr.write(`tcp-repair kernels: ${column}: running ${files.length} test files (${part})...\n`);
  // The full suite installs other Node lines from npm's registry (test/node-lines): guests get a
  // user-mode NIC for that; the kernel-facing part needs no outside network.
  const prefix = (d) => d.split('\n').filter(Boolean).map((l) => `[${column}] ${l}\n`).join('');
  const r = await runColumn(kernel, files, { userNet: part === 'full', fileTimeoutS: 1800, timeoutMs: deadlineMin * 60_000, onOutput: verbose ? (d) => process.stderr.write(prefix(d)) : undefined });
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
    probe: r.probe,
  };
  results.push({ record, r });
  if (!r.ok) {
    process.stderr.write(`\n--- ${column}: FAILED (exit ${r.vm.exitCode}${r.vm.timedOut ? ', timed out' : ''}${r.probeError ? `, probe: ${r.probeError}` : ''}) ---\n`);
    for (const f of r.tap.failures.slice(0, 30)) process.stderr.write(`${f.replace(/\/\/# sourceMappingURL=\S+/g, '')}\n`);
    if (!r.tap.complete) process.stderr.write(`${r.tapText.slice(-3000)}\n${r.vm.console.slice(-3000)}\n`);
  }
  if (writeDocs && r.probe) {
    mkdirSync(join(ROOT, 'docs/kernels'), { recursive: true });
    writeFileSync(join(ROOT, 'docs/kernels', `${column}.json`), `${JSON.stringify(record, null, 2)}\n`);
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
if (writeDocs) {
  generateDocs();
  console.log('docs/kernels.md regenerated from docs/kernels/*.json');
}
process.exitCode = results.every(({ record }) => record.ok) ? 0 : 1;
