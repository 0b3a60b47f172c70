/**
 * Checkpoint without a feature it cannot do without: refused with a FeatureUnavailableError
 * naming the feature, and the refusal loses nothing: the socket is not frozen (repair off, not
 * corked) and every byte queued before, plus new ones, arrives in both directions. Where the
 * fallback lets some sockets through (idle ones without queuePeek, lock: 'none' without
 * freezeFilter), those are checkpointed and restored.
 */
import t from 'tap';
import type net from 'node:net';
import { checkpoint, restore, lowlevel, socketFd } from 'tcp-repair';
import { bothWaysIntact, disable, loadedPair, refusedFor } from '../helpers/fallbacks.js';
import { Collector, connectedPair, pattern, sleep, until } from '../helpers/streams.js';

function notFrozen(t: Tap.Test, socket: net.Socket): void {
  t.equal(lowlevel.isInRepair(socketFd(socket)), false, 'repair mode is off');
  t.equal(socket.writableCorked, 0, 'socket is not corked');
}

t.test('no tcpRepair: refused before anything is touched', async (t) => {
  disable(t, 'tcpRepair');
  const loaded = await loadedPair(t);
  const { srv, client } = loaded.pair;
  const e = await refusedFor(t, () => checkpoint(srv), 'tcpRepair');
  t.match(e.message, /forced off/, 'the message says it was forced off');
  notFrozen(t, srv);
  loaded.openClient();
  await bothWaysIntact(t, srv, client, { up: loaded.up, down: loaded.down }, 'after the refusal');
});

t.test("no freezeFilter: lock 'filter' refused with advice; lock 'none' checkpoints and restores", async (t) => {
  disable(t, 'freezeFilter');
  const loaded = await loadedPair(t);
  const { srv, client } = loaded.pair;
  const e = await refusedFor(t, () => checkpoint(srv), 'freezeFilter');
  t.match(e.message, /lock: 'none'/, "the message points to lock: 'none'");
  notFrozen(t, srv);
  // lock: 'none' under an external lock: here the client's own drop filter, so it receives
  // nothing and sends nothing the frozen server could see (an nftables rule in real use).
  const image = await checkpoint(srv, { lock: 'none' });
  t.ok(image.recvQueue.length > 0 && image.sentUnacked.length > 0, "lock: 'none' checkpoint has the queued bytes");
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  loaded.openClient();
  await bothWaysIntact(t, restored, client, { up: loaded.up, down: loaded.down }, "lock: 'none', restored without the guard");
});

t.test('no queuePeek: a socket with queued bytes is refused and keeps working; an idle one moves', async (t) => {
  disable(t, 'queuePeek');
  const loaded = await loadedPair(t);
  const { srv, client } = loaded.pair;
  const e = await refusedFor(t, () => checkpoint(srv), 'queuePeek');
  t.match(e.message, /received and \d+ send-queue bytes/, 'the message gives the queued byte counts');
  notFrozen(t, srv);
  loaded.openClient();
  await bothWaysIntact(t, srv, client, { up: loaded.up, down: loaded.down }, 'refused socket');

  const idle = await connectedPair();
  t.teardown(() => idle.close());
  const image = await checkpoint(idle.srv);
  t.equal(image.recvQueue.length + image.sentUnacked.length + image.unsent.length, 0, 'idle socket checkpointed (empty queues)');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  await bothWaysIntact(t, restored, idle.client, {}, 'idle socket restored');
});

t.test('no halfClosedRepair: CLOSE_WAIT refused, the socket still reads the rest then end, and writes', async (t) => {
  disable(t, 'halfClosedRepair');
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  srv.pause();
  const last = pattern(120_000, 31);
  const atClient = new Collector(client);
  client.end(last);
  await until(() => lowlevel.tcpStateName(lowlevel.tcpInfo(socketFd(srv)).state) === 'CLOSE_WAIT', 5000, 'CLOSE_WAIT');
  await sleep(20);
  const e = await refusedFor(t, () => checkpoint(srv), 'halfClosedRepair');
  t.match(e.message, /CLOSE_WAIT/, 'the message names the state');
  notFrozen(t, srv);
  const atServer = new Collector(srv);
  srv.resume();
  await atServer.waitEnd(5000);
  t.ok(atServer.bytes().equals(last), 'the refused socket read every byte the peer sent, then end');
  const reply = pattern(150_000, 32);
  srv.end(reply);
  await atClient.waitEnd(5000);
  t.ok(atClient.bytes().equals(reply), 'and the peer got what it wrote after the refusal, then end');

  // ESTABLISHED sockets are not affected.
  const other = await connectedPair();
  t.teardown(() => other.close());
  const image = await checkpoint(other.srv);
  t.equal(image.state, 'ESTABLISHED');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  await bothWaysIntact(t, restored, other.client, {}, 'ESTABLISHED still moves');
});

t.test('no halfClosedRepair on the restoring side: a CLOSE_WAIT image still restores (rebuilt ESTABLISHED)', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  srv.pause();
  const last = pattern(100_000, 33);
  const atClient = new Collector(client);
  client.end(last);
  await until(() => lowlevel.tcpStateName(lowlevel.tcpInfo(socketFd(srv)).state) === 'CLOSE_WAIT', 5000, 'CLOSE_WAIT');
  await sleep(20);
  const image = await checkpoint(srv);
  t.equal(image.state, 'CLOSE_WAIT');
  disable(t, 'halfClosedRepair');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  const atServer = new Collector(restored);
  await atServer.waitEnd(5000);
  t.ok(atServer.bytes().equals(last), 'the restored copy read the rest, then end');
  const reply = pattern(150_000, 34);
  restored.end(reply);
  await atClient.waitEnd(5000);
  t.ok(atClient.bytes().equals(reply), 'and the peer got its reply, then end');
});
