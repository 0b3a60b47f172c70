/**
 * No repairWindow (TCP_REPAIR_WINDOW, ~4.8): checkpoint stores no window, restore sets none and
 * the kernel takes the peer's window from its next segment. Every byte arrives, both ways, with
 * bytes in each queue at checkpoint time. Several connections, so the peers' initial sequence
 * numbers fall in both halves of the sequence space (snd_wl1 starts at 0 without a window).
 */
import t from 'tap';
import { checkpoint, restore, encodeImage, decodeImage, lowlevel, socketFd, disabledFeatures } from 'tcp-repair';
import { bothWaysIntact, disable, loadedPair } from '../helpers/fallbacks.js';
import { connectedPair } from '../helpers/streams.js';

t.test('checkpoint stores no window; restore without one carries every byte both ways', async (t) => {
  disable(t, 'repairWindow');
  t.same(disabledFeatures(), ['repairWindow']);
  const halves = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const loaded = await loadedPair(t);
    const { srv, client } = loaded.pair;
    const image = decodeImage(encodeImage(await checkpoint(srv)));
    t.equal(image.window, null, `#${i}: the image has no window`);
    t.ok(image.recvQueue.length > 0 && image.sentUnacked.length > 0 && image.unsent.length > 0, `#${i}: bytes in every queue`);
    halves.add(image.recvSeq >= 2 ** 31 ? 'high' : 'low');
    const restored = restore(image);
    t.teardown(() => restored.destroy());
    loaded.openClient();
    await bothWaysIntact(t, restored, client, { up: loaded.up, down: loaded.down }, `#${i}`);
  }
  t.comment(`peer sequence numbers seen in the ${[...halves].join(' and ')} half of the space`);
});

t.test('an image taken with a window restores without setting it when the feature is off here', async (t) => {
  const loaded = await loadedPair(t);
  const { srv, client } = loaded.pair;
  const image = await checkpoint(srv);
  t.ok(image.window, 'taken where the window exists: the image has one');
  disable(t, 'repairWindow');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  // The kernel's windows now are not the image's: restore did not set them.
  const fd = socketFd(restored);
  lowlevel.repairOn(fd);
  const now = lowlevel.getRepairWindow(fd);
  lowlevel.repairOff(fd);
  t.not(now.sndWnd, image.window!.sndWnd, `snd_wnd ${now.sndWnd} is the kernel's, not the image's ${image.window!.sndWnd}`);
  loaded.openClient();
  await bothWaysIntact(t, restored, client, { up: loaded.up, down: loaded.down }, 'image with a window');
});

t.test('idle connection: checkpoint and restore without a window, then traffic both ways', async (t) => {
  disable(t, 'repairWindow');
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  const image = await checkpoint(pair.srv);
  t.equal(image.window, null, 'no window');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  await bothWaysIntact(t, restored, pair.client, {}, 'idle');
});
