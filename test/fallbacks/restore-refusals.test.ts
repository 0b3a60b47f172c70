/**
 * Restore without a feature the image needs: refused with a FeatureUnavailableError naming the
 * feature, before a socket exists. The refusal loses nothing: the frozen source is untouched, and
 * the same image restores once the feature is back (every byte, both ways). Where the fallback
 * lets some images through (no timestamps, empty queues, a local address), they restore.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import { checkpoint, restore, resume, activate, lowlevel, setDisabledFeatures, socketFd, type SocketImage } from 'tcp-repair';
import { bothWaysIntact, disable, loadedPair, refusedFor, type Loaded } from '../helpers/fallbacks.js';
import { connectedPair } from '../helpers/streams.js';
import { createNetns } from '../helpers/netns.js';
import type { FeatureName } from 'tcp-repair';

/** Checks the refusal, then that the image restores with every feature on. */
async function refusedThenRestored(t: Tap.Test, loaded: Loaded, image: SocketImage, feature: FeatureName, options = {}): Promise<void> {
  const fdsBefore = openFds();
  const e = await refusedFor(t, () => restore(image, options), feature);
  t.equal(openFds(), fdsBefore, 'no socket left behind');
  t.equal(lowlevel.isInRepair(socketFd(loaded.pair.srv)), true, 'the source is still frozen, as checkpoint left it');
  setDisabledFeatures([]);
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  loaded.openClient();
  await bothWaysIntact(t, restored, loaded.pair.client, { up: loaded.up, down: loaded.down }, `the refused image, restored with ${feature} back`);
  t.ok(e.message.length > 40, 'the message explains');
}

const openFds = () => readdirSync('/proc/self/fd').length;

t.test('no tcpRepair', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'tcpRepair');
  await refusedThenRestored(t, loaded, image, 'tcpRepair');
});

t.test('no repairOptions', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'repairOptions');
  await refusedThenRestored(t, loaded, image, 'repairOptions');
});

t.test('no timestampSet: an image with timestamps is refused', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  t.equal(image.options.timestamps, true, 'loopback connections negotiate timestamps');
  disable(t, 'timestampSet');
  await refusedThenRestored(t, loaded, image, 'timestampSet');
});

t.test('no timestampSet: a connection without timestamps moves (namespace with tcp_timestamps=0)', async (t) => {
  const ns = createNetns('tcprt-fb');
  t.teardown(() => ns.remove());
  ns.exec('sysctl', ['-qw', 'net.ipv4.tcp_timestamps=0']);
  const script = new URL('../fixtures/no-timestamps.mjs', import.meta.url).pathname;
  const r = await ns.node(script, [], 30_000);
  t.equal(r.code, 0, `fixture exit code (stderr: ${r.stderr.trim()})`);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
  t.same(result.disabled, ['timestampSet'], 'TCP_REPAIR_DISABLE=timestampSet in the fixture');
  t.equal(result.timestamps, false, 'the connection negotiated no timestamps');
  t.equal(result.upIntact, true, 'client -> restored server: SHA-256 equal');
  t.equal(result.downIntact, true, 'restored server -> client: SHA-256 equal');
});

t.test('no queueRefill: an image with queued bytes is refused; an idle one restores', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'queueRefill');
  const idle = await connectedPair();
  t.teardown(() => idle.close());
  const idleImage = await checkpoint(idle.srv);
  const restoredIdle = restore(idleImage);
  t.teardown(() => restoredIdle.destroy());
  await bothWaysIntact(t, restoredIdle, idle.client, {}, 'idle image restored without queueRefill');
  await refusedThenRestored(t, loaded, image, 'queueRefill');
});

t.test('no ipv6: an IPv6 image is refused', async (t) => {
  const loaded = await loadedPair(t, { listen: '::1' });
  const image = await checkpoint(loaded.pair.srv);
  t.equal(image.family, 6);
  disable(t, 'ipv6');
  await refusedThenRestored(t, loaded, image, 'ipv6');
});

t.test('no ipv6: IPv4 images still restore', async (t) => {
  disable(t, 'ipv6');
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  loaded.openClient();
  await bothWaysIntact(t, restored, loaded.pair.client, { up: loaded.up, down: loaded.down }, 'IPv4 without ipv6');
});

t.test('no freezeFilter: quiet restore is refused', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'freezeFilter');
  await refusedThenRestored(t, loaded, image, 'freezeFilter', { quiet: true });
});

t.test('quiet restore still works with repairOffNoWindowProbe off (it never leaves repair silently)', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'repairOffNoWindowProbe');
  const restored = restore(image, { quiet: true });
  t.teardown(() => restored.destroy());
  t.equal(lowlevel.isInRepair(socketFd(restored)), true, 'the quiet copy waits in repair mode');
  activate(restored);
  loaded.openClient();
  await bothWaysIntact(t, restored, loaded.pair.client, { up: loaded.up, down: loaded.down }, 'quiet restore, activated');
});

t.test('no transparent: a local address restores without it; an address not on this host is refused', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'transparent');
  // 198.18.0.0/15 (benchmarking range): not on this host.
  const elsewhere: SocketImage = { ...image, local: { address: '198.18.7.1', port: image.local.port } };
  const e = await refusedFor(t, () => restore(elsewhere, { transparent: true }), 'transparent');
  t.match(e.message, /198\.18\.7\.1 is not an address of this host/, 'the message names the address');
  const restored = restore(image, { transparent: true });
  t.teardown(() => restored.destroy());
  t.equal(lowlevel.getOption(socketFd(restored), 'IP_TRANSPARENT'), 0, 'restored without IP_TRANSPARENT');
  loaded.openClient();
  await bothWaysIntact(t, restored, loaded.pair.client, { up: loaded.up, down: loaded.down }, 'local address, transparent asked for');
});

t.test('a refused restore leaves the source to resume()', async (t) => {
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  disable(t, 'repairOptions');
  await refusedFor(t, () => restore(image), 'repairOptions');
  const source = resume(image);
  t.equal(source, loaded.pair.srv, 'resume gives the original socket back');
  t.equal(lowlevel.isInRepair(socketFd(source)), false, 'out of repair mode');
  loaded.openClient();
  await bothWaysIntact(t, source, loaded.pair.client, { up: loaded.up, down: loaded.down }, 'resumed source');
});

t.test('no freebind: nothing changes, restore (transparent too) never uses it', async (t) => {
  disable(t, 'freebind');
  const loaded = await loadedPair(t);
  const image = await checkpoint(loaded.pair.srv);
  const restored = restore(image, { transparent: true });
  t.teardown(() => restored.destroy());
  t.equal(lowlevel.getOption(socketFd(restored), 'IP_FREEBIND'), 0, 'no IP_FREEBIND');
  t.equal(lowlevel.getOption(socketFd(restored), 'IP_TRANSPARENT'), 1, 'IP_TRANSPARENT as asked');
  loaded.openClient();
  await bothWaysIntact(t, restored, loaded.pair.client, { up: loaded.up, down: loaded.down }, 'without freebind');
});
