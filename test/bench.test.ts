// `npm run bench -- --quick` runs from the built package and writes well-formed results (JSON
// and SVG). No figure is checked: benchmarks are never timed tests.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scaled, timeScale } from './helpers/time-scale.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

// In the kernel matrix's emulated guests (TCP_REPAIR_TIME_SCALE > 1) the same quick run with one
// repetition per configuration, started from the bench the host compiled (scripts/kernels/matrix.mjs
// builds it before booting): under TCG, npm's prebench step (the apt check, tsc three times) and
// the repetitions took most of this file's 300 s, and it checks the result files, never a figure.
// The host column runs `npm run bench -- --quick` itself.
const emulated = timeScale > 1;
const command = emulated ? process.execPath : 'npm';
const args = emulated ? ['dist/bench/run.js', '--quick', '--runs', '1'] : ['run', '--silent', 'bench', '--', '--quick'];

t.test('npm run bench -- --quick writes results', { timeout: scaled(570_000) }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'tcp-repair-bench-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const run = spawnSync(command, [...args, '--out', out], { cwd: root, encoding: 'utf8', timeout: scaled(560_000) });
  t.equal(run.status, 0, `exit status (stderr: ${run.stderr?.slice(-2000)})`);
  t.match(run.stdout, /Per-socket cost/);
  t.match(run.stdout, /Host-to-host moves/);

  const files = readdirSync(out);
  const json = files.find((f) => f.endsWith('.json'));
  const svg = files.find((f) => f.endsWith('.svg'));
  t.ok(json, 'a JSON result file');
  t.ok(svg, 'an SVG plot');
  const result = JSON.parse(readFileSync(join(out, json!), 'utf8'));
  t.equal(result.schema, 'tcp-repair-bench/1');
  t.equal(result.quick, true);
  t.ok(!Number.isNaN(Date.parse(result.date)), 'date');
  for (const key of ['cpuModel', 'kernel', 'node']) t.type(result.machine[key], 'string', `machine.${key}`);
  for (const key of ['cpus', 'memoryGiB', 'loadAverage']) t.ok(isNumber(result.machine[key]), `machine.${key}`);

  const local = result.local.results as Array<Record<string, any>>;
  t.same(local.map((r) => `${r.connections}/${r.workload}`), ['1/idle', '1/queued', '100/idle', '100/queued']);
  for (const r of local) {
    for (const clock of ['cpu', 'wall']) {
      for (const impl of ['c', 'node']) {
        for (const phase of ['checkpoint', 'release', 'restore', 'checkpointRestore']) t.ok(isNumber(r[clock][impl][phase]), `${clock}.${impl}.${phase}`);
      }
      for (const phase of ['encode', 'decode', 'withCodec']) t.ok(isNumber(r[clock].node[phase]), `${clock}.node.${phase}`);
      for (const ratio of ['checkpoint', 'restore', 'checkpointRestore']) t.ok(isNumber(r[clock].ratio[ratio]), `${clock}.ratio.${ratio}`);
    }
    t.equal(r.samples.c.length, r.runs);
    t.equal(r.samples.node.length, r.runs);
    t.ok(isNumber(r.imageOverheadBytes));
  }

  const host = result.host.results as Array<Record<string, any>>;
  t.same(host.map((r) => r.connections), [1, 100]);
  for (const r of host) {
    for (const phase of ['connect', 'checkpoint', 'transfer', 'restore', 'handover', 'activate', 'release', 'frozen', 'total']) t.ok(isNumber(r.phasesMs[phase]), `phasesMs.${phase}`);
    for (const key of ['frozenMs', 'addressMoveMs', 'moved', 'failed', 'resets', 'resetsAtClose', 'imageOverheadBytes']) t.ok(isNumber(r[key]), key);
    for (const key of ['p50', 'p99', 'max']) t.ok(isNumber(r.stallMs[key]), `stallMs.${key}`);
    t.ok(isNumber(r.cpuUsPerConnection['host-a']) && isNumber(r.cpuUsPerConnection['host-b']), 'CPU per connection');
    t.equal(r.perRun.length, r.runs);
  }
  t.match(readFileSync(join(out, svg!), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
});
