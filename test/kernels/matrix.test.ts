// The kernel matrix inside the default suite: boots Debian's 6.1 and 6.12 cloud kernels under
// qemu (TCG) over the host's root and runs the kernel-facing part of the suite in each
// (test/primitives without the build test, test/checkpoint, test/smoke.test.ts), plus a probe
// that must find every feature. A guest failure fails this test with the guest's failing
// assertions printed. Nothing is skipped: without qemu, scripts/kernels/deps.sh installs it (as
// root) or this test fails saying what to install. This is what CI runs of the matrix; the whole
// suite per kernel runs in `npm run test:kernels` (docs/kernels.md says why).
//
// Time, measured 2026-12-04 on the project's 2 cores: 2 min 45 s for this file on a quiet machine
// (6.1: boot 3.4 s, suite 68 s; 6.12: boot 4.5 s, suite 69 s; the abort test 7 s), 7 min 36 s with
// the machine busy (load ~12: boot 7.5 / 12.6 s, suites 207 / 195 s). 563 of 563 assertions passed
// in each guest both times. The kernels boot one after the other: two TCG guests on two cores only
// slow each other down.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { ensureKernel } from '../../scripts/kernels/kernels.mjs';
import { bootVm } from '../../scripts/kernels/vm.mjs';
import { processesAlive } from '../helpers/leftovers.js';
import { KERNEL_FACING, runColumn } from '../../scripts/kernels/suite.mjs';

// Both kernels in one file, one after the other: about three times the busy-machine 7.6 min.
t.setTimeout(25 * 60_000);

// The features every kernel of the matrix must have (6.1 and 6.12 both postdate all of them).
const EXPECTED_FEATURES = [
  'tcpRepair', 'repairOptions', 'repairWindow', 'timestampSet', 'repairOffNoWindowProbe', 'queueRefill',
  'queuePeek', 'halfClosedRepair', 'ipv6', 'freebind', 'transparent', 'freezeFilter', 'filterGracePeriod', 'pidfdGetfd',
];

t.before(() => {
  // Installs qemu, virtiofsd and busybox-static when missing, or throws saying what is missing.
  execFileSync('bash', ['scripts/kernels/deps.sh'], { stdio: ['ignore', 'inherit', 'inherit'] });
});

for (const name of ['6.1', '6.12']) {
  t.test(`kernel ${name}: kernel-facing suite and probe inside a TCG guest`, async (t) => {
    const kernel = ensureKernel(name);
    const started = Date.now();
    const r = await runColumn(kernel, KERNEL_FACING, { timeoutMs: 11 * 60_000, memoryMiB: 2048 });
    t.comment(`${name} (${kernel.release}): boot ${r.vm.bootMs} ms, probe ${r.probeMs} ms, suite ${r.suiteMs} ms, total ${Date.now() - started} ms; tests ${r.tap.pass}/${r.tap.total} pass, ${r.tap.fail} fail`);

    t.equal(r.vm.timedOut, false, 'the guest finished before its deadline');
    t.ok(r.vm.bootMs !== null, 'the guest booted and started the command', { console: r.vm.console.slice(-4000) });

    // The probe ran in the guest (its kernel is the guest's release) and found every feature.
    t.ok(r.probe, 'probe --json printed a report', { error: r.probeError });
    t.equal(r.probe?.kernel, kernel.release, 'the probe ran on the guest kernel');
    const found = Object.fromEntries((r.probe?.features ?? []).map((f: { name: string; available: boolean; code?: string }) => [f.name, f.available ? 'yes' : `no (${f.code})`]));
    for (const feature of EXPECTED_FEATURES) t.equal(found[feature], 'yes', `${name}: ${feature} available`);

    // The guest's suite: complete, every file ran, nothing failed.
    t.ok(r.tap.complete, 'the guest tap run printed its summary', { tail: r.tapText.slice(-3000) });
    t.ok(r.tap.pass > 0, `the guest ran assertions (${r.tap.pass})`);
    const failedFiles = r.tap.files.filter((f) => !f.ok).map((f) => f.name);
    t.same(failedFiles, [], 'every guest test file passed');
    if (r.tap.fail > 0) t.fail(`${r.tap.fail} guest failures on ${name}:\n${r.tap.failures.join('\n')}`);
    t.equal(r.tap.fail, 0, 'no failing assertion in the guest');
    t.equal(r.tapExit, 0, 'the guest tap exited 0');
  });
}

t.test('a guest stopped mid-command is killed, qemu and virtiofsd with it', async (t) => {
  const kernel = ensureKernel('6.1');
  // Aborted as soon as the command shows it runs; the deadline only guards this test.
  const stop = new AbortController();
  let abortedAt = 0;
  const r = await bootVm({
    kernel, command: 'echo started; sleep 1000', timeoutMs: 180_000, cpus: 1, memoryMiB: 1024, signal: stop.signal,
    onOutput: (text) => { if (text.includes('started') && !abortedAt) { abortedAt = Date.now(); stop.abort(); } },
  });
  t.ok(abortedAt > 0, 'the command started and was aborted', { console: r.console.slice(-2000) });
  t.equal(r.timedOut, false, 'stopped by the abort, not the deadline');
  t.equal(r.exitCode, null, 'no exit code: the command never finished');
  t.ok(Date.now() - abortedAt < 10_000, `bootVm returned soon after the abort (${Date.now() - abortedAt} ms)`);
  const pids = [r.pids.qemu, r.pids.virtiofsd].filter((p): p is number => typeof p === 'number');
  t.equal(pids.length, 2, 'both processes were started');
  t.same(processesAlive(pids), [], 'neither qemu nor virtiofsd is left running');
});
