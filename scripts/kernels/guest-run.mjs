#!/usr/bin/env node
// The test runner inside a TCG guest: runs each test file with plain `node file.js` (a tap test
// file prints its own TAP when run directly), a few at a time, and prints one TAP stream shaped
// like `tap --reporter=tap`'s: a subtest per file, `ok N - file # time=` per file, and the closing
// `# { total, pass, fail, ... }` summed from each file's own summary line.
// Why not the tap runner itself: under TCG it costs ~2.5 min per file before the test even starts
// (measured: the same 17-assertion file took 156 s under `tap`, 13 s under `node`); the tests,
// the tap library and its assertions are the same.
// After each file a `# so far { ... }` comment carries the running totals.
// Usage: node guest-run.mjs [--jobs N] [--timeout SECONDS] file.js...
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
let jobs = 2;
let timeoutS = 900;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--jobs') jobs = Number(args[++i]);
  else if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else files.push(args[i]);
}

const totals = { total: 0, pass: 0, fail: 0, skip: 0, todo: 0 };

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    // TAP_TIMEOUT: what .taprc's timeout does under the runner (the root test times itself out).
    const child = spawn(process.execPath, [file], { env: { ...process.env, TAP_TIMEOUT: String(timeoutS) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // Backstop if the file hangs past its own timeout (e.g. stuck before tap loads).
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 60) * 1000);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ file, code, signal, out, err, ms: Date.now() - started });
    });
  });
}

let index = 0;
let number = 0;
const queue = [...files];
process.stdout.write(`TAP version 14\n1..${files.length}\n`);
async function worker() {
  while (queue.length > 0) {
    const file = queue.shift();
    const r = await runFile(file);
    index++;
    number++;
    const summary = /^# \{ (.*) \}\s*$/m.exec(r.out);
    const counts = {};
    if (summary) {
      for (const part of summary[1].split(',')) {
        const [k, v] = part.split(':').map((s) => s.trim());
        if (k in totals) counts[k] = Number(v);
      }
    }
    for (const k of Object.keys(totals)) totals[k] += counts[k] ?? 0;
    const ok = r.code === 0 && summary !== null;
    if (!ok && !counts.fail) totals.fail += 1; // crashed or timed out without a failing assertion
    const body = r.out.split('\n').filter((l) => !/^TAP version/.test(l) && !/^# \{ .* \}\s*$/.test(l));
    let text = `# Subtest: ${file}\n${body.map((l) => (l ? `    ${l}` : '')).join('\n')}\n`;
    if (!ok) {
      text += `    not ok ${body.length + 1} - ${file} exited with ${r.signal ?? r.code}\n      ---\n      stderr: |\n${r.err.split('\n').slice(-40).map((l) => `        ${l}`).join('\n')}\n      ...\n`;
    }
    text += `${ok ? 'ok' : 'not ok'} ${number} - ${file.replace(/\.js$/, '.ts')} # time=${r.ms}ms\n`;
    // Running totals: what a run cut short (the guest's deadline) still reports.
    text += `# so far { files: ${index}, total: ${totals.total}, pass: ${totals.pass}, fail: ${totals.fail} }\n\n`;
    process.stdout.write(text);
  }
}
await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
const parts = Object.entries(totals).filter(([k, v]) => v > 0 || k === 'total' || k === 'pass');
process.stdout.write(`# { ${parts.map(([k, v]) => `${k}: ${v}`).join(', ')} }\n`);
process.exitCode = totals.fail === 0 && index === files.length ? 0 : 1;
