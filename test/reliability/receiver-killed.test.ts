// Fault injection, real processes in namespaces: the receiver process on host-b is killed
// (SIGKILL) at each step of a migration. Every time, every connection resumes on host-a and
// keeps every byte; the copies host-b had restored die with it silently (they were still
// frozen in repair mode), so no FIN or RST reaches a client.
import t from 'tap';
import { CONNECTIONS, expectMovedIntact, expectRolledBack, fdsOf, killedBy, withHarness } from './fault-kit.js';
import { sleep, type SoakHarness } from '../../dist/esm/soak/harness.js';
import { scaled } from '../helpers/time-scale.js';

/** Waits until host-b's kernel holds an established connection on the control port. */
async function controlConnectionQueued(h: SoakHarness, timeoutMs = 10_000): Promise<void> {
  const { port } = h.controlAddress('host-b');
  const deadline = Date.now() + scaled(timeoutMs); // a hang guard (time-scale.ts)
  while (Date.now() < deadline) {
    const { stdout } = await h.topology.exec('host-b', 'ss', ['-Htn', 'state', 'established', `( sport = :${port} )`]);
    if (stdout.trim() !== '') return;
    await sleep(20);
  }
  throw new Error(`no control connection reached host-b within ${scaled(timeoutMs)} ms`);
}

t.test('killed before the handshake (stopped, then killed with the source connecting)', async (t) => {
  await withHarness(t, {}, async (h) => {
    const a = await fdsOf(h, 'host-a');
    const pid = h.pids.get('host-b')!;
    process.kill(pid, 'SIGSTOP');
    const moving = h.move({ timeoutMs: scaled(5000) });
    // Killed only once the source is connecting: the stopped receiver's kernel has completed the
    // handshake (a fixed delay let a loaded machine kill it before the connect: ECONNREFUSED).
    await controlConnectionQueued(h);
    process.kill(pid, 'SIGKILL');
    const result = await moving;
    t.equal(await killedBy(h, 'host-b'), 'SIGKILL', 'the receiver was killed');
    await expectRolledBack(t, h, result, /ECONNRESET|ERR_CHANNEL/, { a });
  });
});

t.test('killed mid-stream (on the 3rd image, before restoring it)', async (t) => {
  await withHarness(t, {}, async (h) => {
    const a = await fdsOf(h, 'host-a');
    await h.setFault('host-b', { kind: 'kill-on-image', count: 3 });
    const result = await h.move({ timeoutMs: scaled(5000) });
    t.equal(await killedBy(h, 'host-b'), 'SIGKILL', 'the receiver was killed');
    await expectRolledBack(t, h, result, /ECONNRESET|ERR_CHANNEL/, { a });
  });
});

t.test('killed after a restore, before confirming it', async (t) => {
  await withHarness(t, {}, async (h) => {
    const a = await fdsOf(h, 'host-a');
    await h.setFault('host-b', { kind: 'kill-on-restored', count: CONNECTIONS });
    const result = await h.move({ timeoutMs: scaled(5000) });
    t.equal(await killedBy(h, 'host-b'), 'SIGKILL', 'the receiver was killed holding restored copies of every connection');
    await expectRolledBack(t, h, result, /ECONNRESET|ERR_CHANNEL/, { a });
  });
});

t.test('killed when told to activate, after the address moved: the address is handed back', async (t) => {
  await withHarness(t, {}, async (h) => {
    const a = await fdsOf(h, 'host-a');
    await h.setFault('host-b', { kind: 'kill-on-activate' });
    const result = await h.move({ timeoutMs: scaled(5000), handback: true });
    t.ok(result.handedBack, 'the address came back to host-a');
    t.equal(await killedBy(h, 'host-b'), 'SIGKILL', 'the receiver was killed');
    await expectRolledBack(t, h, result, /ECONNRESET|ERR_CHANNEL/, { a });
  });
});

t.test('after a kill, a restarted receiver takes the connections', async (t) => {
  await withHarness(t, {}, async (h) => {
    await h.setFault('host-b', { kind: 'kill-on-restored', count: 2 });
    const failed = await h.move({ timeoutMs: scaled(5000) });
    t.ok(failed.outcome.error, 'first attempt failed');
    await h.startNode('host-b');
    const result = await h.move({ timeoutMs: scaled(5000) });
    t.equal(h.owner, 'host-b');
    await expectMovedIntact(t, h, result, 'second attempt succeeded');
  });
});
