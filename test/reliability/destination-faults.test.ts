// Fault injection at the destination, real processes in namespaces: its control address is
// missing, it lacks the service address and may not borrow it (no IP_TRANSPARENT), its control
// port is taken, a connection's 4-tuple is already taken there, its process hits its fd limit.
// Each gives a clear error; every connection stays (or rolls back) on host-a, intact.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONNECTIONS, expectRolledBack, fdsOf, withHarness } from './fault-kit.js';
import { CONTROL_PORT, request } from '../../dist/esm/soak/harness.js';
import { scaled } from '../helpers/time-scale.js';

const INDEX = fileURLToPath(new URL('../../dist/esm/index.js', import.meta.url));

t.test('control address missing (nothing answers ARP for it)', async (t) => {
  await withHarness(t, {}, async (h) => {
    const a = await fdsOf(h, 'host-a');
    const result = await h.move({ timeoutMs: scaled(2000), to: { host: '198.18.0.9', port: CONTROL_PORT } });
    await expectRolledBack(t, h, result, /ERR_CHANNEL_TIMEOUT|EHOSTUNREACH/, { a });
  });
});

t.test('service address missing on the destination, without IP_TRANSPARENT', async (t) => {
  await withHarness(t, { transparentB: false }, async (h) => {
    const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
    const result = await h.move({ timeoutMs: scaled(3000), handback: true });
    await expectRolledBack(t, h, result, /receiver failed to restore 6 connection\(s\): .*(EADDRNOTAVAIL|ENETUNREACH|EINVAL)/, { a, b });
  });
});

t.test("the receiver's control port is taken: listen fails with EADDRINUSE", async (t) => {
  await withHarness(t, {}, async (h) => {
    const b = h.controlAddress('host-b');
    const script = `import { createReceiver } from ${JSON.stringify(INDEX)};
      const r = createReceiver({ host: ${JSON.stringify(b.host)}, port: ${b.port}, key: 'another-receiver-key-0123' }, () => {});
      try { await r.listen(); console.log('listening'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = execFileSync('ip', ['netns', 'exec', h.topology.hostB.ns, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    const e = JSON.parse(out);
    t.equal(e.code, 'EADDRINUSE');
    t.match(e.message, new RegExp(`${b.host.replace(/\./g, '\\.')}:${b.port}`), `the message names the address: ${e.message}`);
    // The receiver already there still works.
    const result = await h.move({ timeoutMs: scaled(3000) });
    t.equal(result.outcome.moved, CONNECTIONS, 'the existing receiver takes every connection');
    await h.waitProgress();
    t.ok((await h.verifyAll()).ok, 'every byte intact');
  });
});

t.test("a connection's 4-tuple is already taken on the destination", async (t) => {
  await withHarness(t, {}, async (h) => {
    const tuples = (await request(h.client, { cmd: 'tuples' }, 'tuples')) as unknown[];
    await request(h.node('host-b'), { cmd: 'occupy', tuples: [tuples[0]] }, 'occupied');
    const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
    const result = await h.move({ timeoutMs: scaled(3000), handback: true });
    await expectRolledBack(t, h, result, /ERR_TUPLE_IN_USE: .*still holds this connection/, { a, b });
    await request(h.node('host-b'), { cmd: 'release-occupied' }, 'released');
  });
});

t.test('the receiver process reaches its fd limit (RLIMIT_NOFILE lowered with prlimit)', async (t) => {
  await withHarness(t, {}, async (h) => {
    const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
    // Room for the control connection and two restores, not six.
    const limit = b + 3;
    execFileSync('prlimit', ['--pid', String(h.pids.get('host-b')), `--nofile=${limit}:${limit}`]);
    const result = await h.move({ timeoutMs: scaled(3000), handback: true });
    await expectRolledBack(t, h, result, /EMFILE/, { a, b });
  });
});
