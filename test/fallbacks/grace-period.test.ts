/**
 * Without filterGracePeriod (membarrier refused: nohz_full, no CONFIG_MEMBARRIER, a seccomp
 * policy) checkpoint waits a fixed time after attaching the freeze filter instead of one RCU grace
 * period. Forced off here: the wait shows in the checkpoint's duration, probe reports it, and the
 * connection moves intact both ways.
 */
import t from 'tap';
import { checkpoint, probe, restore } from 'tcp-repair';
import { bothWaysIntact, disable, loadedPair } from '../helpers/fallbacks.js';

/** FALLBACK_SETTLE_MS of src/freeze-lock.ts (not part of the public API). */
const FIXED_WAIT_MS = 50;

t.test('no filterGracePeriod: checkpoint waits the fixed time instead, and the move loses nothing', async (t) => {
  disable(t, 'filterGracePeriod');
  const report = await probe();
  const entry = report.features.find((f) => f.name === 'filterGracePeriod');
  t.equal(entry?.code, 'EDISABLED', 'probe reports it forced off');
  const loaded = await loadedPair(t);
  const started = performance.now();
  const image = await checkpoint(loaded.pair.srv);
  const took = performance.now() - started;
  t.ok(took >= FIXED_WAIT_MS - 1, `checkpoint took ${took.toFixed(1)} ms, at least the fixed ${FIXED_WAIT_MS} ms wait`);
  t.ok(image.recvQueue.length > 0 && image.sentUnacked.length > 0, 'the image has the queued bytes');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  loaded.openClient();
  await bothWaysIntact(t, restored, loaded.pair.client, { up: loaded.up, down: loaded.down }, 'with the fixed wait');
});
