/**
 * lockForCheckpoint() freezes a batch at once (filters on, one RCU grace period), so checkpoint()
 * of those sockets waits for nothing more; unlockUnused() gives back the ones not checkpointed.
 * Checks, on real loopback connections: a locked socket accepts nothing (its receive sequence and
 * queue stay put while its peer sends); a checkpoint of a locked socket restores intact; one
 * resumed after a checkpoint and one never checkpointed both carry every byte both ways; and
 * unlockUnused leaves alone a socket whose checkpoint took the lock.
 */
import t from 'tap';
import { checkpoint, lockForCheckpoint, lowlevel, restore, resume, socketFd, unlockUnused } from 'tcp-repair';
import { bothWaysIntact } from '../helpers/fallbacks.js';
import { connectedPair, pattern, sleep, type Pair } from '../helpers/streams.js';

/** The receive sequence (rcv_nxt) without disturbing the socket: repair on, read, repair off with no probe. */
function receiveSequence(fd: number): number {
  lowlevel.repairOn(fd);
  try {
    return lowlevel.getQueueSeq(fd, 'recv');
  } finally {
    lowlevel.selectQueue(fd, 'none');
    lowlevel.repairOff(fd, { windowProbe: false });
  }
}

t.test('a locked batch accepts nothing; checkpointed, resumed and unlocked sockets all carry every byte', async (t) => {
  const pairs: Pair[] = [];
  for (let i = 0; i < 4; i++) pairs.push(await connectedPair());
  t.teardown(() => pairs.forEach((p) => p.close()));
  const servers = pairs.map((p) => p.srv);
  for (const s of servers) s.pause();

  lockForCheckpoint(servers);
  const before = servers.map((s) => receiveSequence(socketFd(s)));
  const up = pairs.map((_, i) => pattern(200_000, 40 + i));
  pairs.forEach((p, i) => p.client.write(up[i]!));
  await sleep(300);
  servers.forEach((s, i) => {
    const fd = socketFd(s);
    t.equal(receiveSequence(fd), before[i], `socket ${i}: receive sequence unchanged while locked (the peer sent ${up[i]!.length} bytes)`);
    t.equal(lowlevel.queueSizes(fd).inq, 0, `socket ${i}: nothing queued while locked`);
  });

  // 0: checkpoint and restore; 1: checkpoint and resume; 2 and 3: never checkpointed.
  const moved = await checkpoint(servers[0]!);
  t.equal(moved.recvSeq, before[0], 'the image has the receive sequence the lock kept');
  t.equal(moved.recvQueue.length, 0, 'and no received bytes');
  const restored = restore(moved);
  t.teardown(() => restored.destroy());
  const resumed = resume(await checkpoint(servers[1]!));
  unlockUnused(servers);
  t.equal(lowlevel.isInRepair(socketFd(restored)), false, 'the restored socket is live');

  await bothWaysIntact(t, restored, pairs[0]!.client, { up: up[0] }, 'checkpointed under the batch lock, restored');
  await bothWaysIntact(t, resumed, pairs[1]!.client, { up: up[1] }, 'checkpointed under the batch lock, resumed');
  await bothWaysIntact(t, servers[2]!, pairs[2]!.client, { up: up[2] }, 'locked, never checkpointed, unlocked');
  await bothWaysIntact(t, servers[3]!, pairs[3]!.client, { up: up[3] }, 'second one unlocked');
});

t.test('unlockUnused after checkpoint() took the lock changes nothing, and a second call is a no-op', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  lockForCheckpoint([pair.srv]);
  const image = await checkpoint(pair.srv);
  unlockUnused([pair.srv]);
  unlockUnused([pair.srv]);
  t.equal(lowlevel.isInRepair(socketFd(pair.srv)), true, 'the checkpointed socket stays frozen (its hold owns the lock now)');
  const again = resume(image);
  await bothWaysIntact(t, again, pair.client, {}, 'resumed after the no-op unlocks');
});

t.test('lockForCheckpoint skips a destroyed socket; its checkpoint then says why', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  pair.srv.destroy();
  t.doesNotThrow(() => lockForCheckpoint([pair.srv]), 'a socket without an fd is skipped');
  await t.rejects(checkpoint(pair.srv), { name: 'SocketStateError' }, 'checkpoint refuses it');
  unlockUnused([pair.srv]);
});
