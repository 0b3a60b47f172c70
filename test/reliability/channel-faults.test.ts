// Fault injection on the control connection, real processes in namespaces: cut (nftables drops
// the control port) during the transfer and after the address moved; frames corrupted,
// truncated, reordered and replayed by a tampering relay on host-b that holds the key (so the
// receiver's and the source's own checks are what is tested), encrypted bytes corrupted or
// replayed on the wire (TLS refuses them), and a wrong key. A harmless reordering still moves
// everything; every other case rolls back with a clear error and loses nothing.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CUT_TABLE, cutScript, expectMovedIntact, expectRolledBack, fdsOf, nft, withHarness } from './fault-kit.js';
import { CONTROL_PORT, type SoakHarness } from '../../dist/esm/soak/harness.js';
import { scaled } from '../helpers/time-scale.js';

const PROXY = fileURLToPath(new URL('../fixtures/frame-proxy.mjs', import.meta.url));
const PROXY_PORT = 7101;

/** Starts the tampering relay inside host-b, in front of host-b's real receiver. */
async function startProxy(t: Tap.Test, h: SoakHarness, mode: string): Promise<{ host: string; port: number }> {
  const b = h.controlAddress('host-b');
  const child = spawn('ip', ['netns', 'exec', h.topology.hostB.ns, process.execPath, PROXY, mode, b.host, String(PROXY_PORT), b.host, String(CONTROL_PORT), h.key], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`proxy exited ${code}`)));
  });
  return { host: b.host, port: PROXY_PORT };
}

t.test('control connection cut during the transfer (after the first restore)', async (t) => {
  await withHarness(t, {}, async (h) => {
    const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
    await h.setFault('host-b', { kind: 'cut-on-restored', count: 1, port: CONTROL_PORT });
    const result = await h.move({ timeoutMs: scaled(2000) });
    // host-b's session times out on its own (3 s) and discards its frozen copies.
    await expectRolledBack(t, h, result, /ERR_CHANNEL_TIMEOUT/, { a, b });
    t.ok(h.sessionErrors.some((e) => e.host === 'host-b' && e.code === 'ERR_CHANNEL_TIMEOUT'), 'host-b ended the session by timeout');
    nft(h.topology.hostB.ns, `delete table inet ${CUT_TABLE}`);
  });
});

t.test('control connection cut after the address moved, before activation: handed back', async (t) => {
  await withHarness(t, {}, async (h) => {
    const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
    const result = await h.move({ timeoutMs: scaled(2000), handback: true, beforeHandover: async () => nft(h.topology.hostB.ns, cutScript(CONTROL_PORT)) });
    t.ok(result.handedBack, 'the address came back');
    await expectRolledBack(t, h, result, /ERR_CHANNEL_TIMEOUT/, { a, b });
    nft(h.topology.hostB.ns, `delete table inet ${CUT_TABLE}`);
  });
});

const tampering: Array<[string, string, RegExp]> = [
  ['corrupt-image', 'an image corrupted in transit is refused by its checksum', /ERR_IMAGE_CHECKSUM/],
  ['truncate', 'a frame cut in the middle', /ERR_CHANNEL|ECONNRESET/],
  ['replay-image', 'an image frame replayed', /ERR_CHANNEL|ECONNRESET/],
  ['reorder-phase', 'IMAGES_DONE reordered before the last image', /ERR_CHANNEL|ECONNRESET/],
  ['replay-answer', 'a confirmation replayed in place of another', /ERR_FRAME_MESSAGE.*already answered/],
  ['tls-corrupt', 'one encrypted byte flipped on the wire', /ERR_CHANNEL|ECONNRESET|ERR_SSL|decrypt|bad record mac/i],
  ['tls-replay', 'encrypted bytes replayed on the wire', /ERR_CHANNEL|ECONNRESET|ERR_SSL|decrypt|bad record mac/i],
];

for (const [mode, what, expected] of tampering) {
  t.test(`${what} (${mode})`, async (t) => {
    await withHarness(t, {}, async (h) => {
      const to = await startProxy(t, h, mode);
      const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
      // With a handback, as recommended: a session lost after the last confirmation (the
      // tampering can be noticed that late) is rolled back even once the address moved.
      const result = await h.move({ timeoutMs: scaled(3000), to, handback: true });
      await expectRolledBack(t, h, result, expected, { a, b });
    });
  });
}

t.test('the answer to ACTIVATE lost: the source asks, finds the connections live at the destination and does not resume them (lose-activated)', async (t) => {
  await withHarness(t, {}, async (h) => {
    const to = await startProxy(t, h, 'lose-activated');
    const result = await h.move({ timeoutMs: scaled(3000), to, handback: true });
    t.notOk(result.handedBack, 'the address stayed at the destination (one live copy, not two)');
    await expectMovedIntact(t, h, result, 'no error: the status query said activated');
  });
});

t.test('image frames reordered among themselves: harmless, everything moves', async (t) => {
  await withHarness(t, {}, async (h) => {
    const to = await startProxy(t, h, 'reorder-images');
    const result = await h.move({ timeoutMs: scaled(3000), to });
    await expectMovedIntact(t, h, result);
  });
});

t.test('wrong key: refused at the handshake, nothing frozen', async (t) => {
  await withHarness(t, {}, async (h) => {
    const [a, b] = [await fdsOf(h, 'host-a'), await fdsOf(h, 'host-b')];
    const result = await h.move({ timeoutMs: scaled(3000), key: 'not-the-key-of-host-b-0123456789' });
    await expectRolledBack(t, h, result, /ERR_CHANNEL_AUTH: TLS-PSK handshake .* failed: wrong key/, { a, b });
  });
});
