/**
 * resume(image): the original socket carries on (both directions, Node's buffered bytes, writes
 * made while frozen). release(image) after a same-process restore is a no-op. A second restore
 * of one image fails clearly and harms nothing.
 */
import t from 'tap';
import { checkpoint, restore, resume, release, lowlevel, socketFd, SocketStateError } from 'tcp-repair';
import { Collector, connectedPair, pattern, sleep, until } from '../helpers/streams.js';

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  return null;
}

t.test('resume: the original socket carries on, nothing lost', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const srvFd = socketFd(srv);
  const up1 = pattern(400_000, 20);
  client.write(up1); // more than Node reads ahead: Node buffer + kernel queue
  await until(() => srv.readableLength > 0 && lowlevel.queueSizes(srvFd).inq > 0, 5000, 'server buffers');
  client.pause();
  const down1 = pattern(3_000_000, 21);
  srv.write(down1); // the client does not read: send queue and Node pending writes fill
  await sleep(20);
  const image = await checkpoint(srv);
  t.ok(image.recvQueue.length > 0 && image.unsent.length > 0, 'frozen with bytes both ways');
  t.equal(lowlevel.isInRepair(srvFd), true, 'source is in repair mode while frozen');
  // While frozen: the app writes (corked, waits in Node), the client writes (dropped by the
  // filter, retransmitted after the thaw).
  const down2 = pattern(100_000, 22);
  srv.write(down2);
  const up2 = pattern(100_000, 23);
  client.write(up2);
  await sleep(30);
  const back = resume(image);
  t.equal(back, srv, 'resume returns the original socket');
  t.equal(lowlevel.isInRepair(srvFd), false, 'repair off');
  t.equal(srv.writableCorked, 0, 'uncorked');
  const atServer = new Collector(srv);
  const atClient = new Collector(client);
  client.resume();
  const down3 = pattern(50_000, 24);
  srv.write(down3);
  const want = { up: Buffer.concat([up1, up2]), down: Buffer.concat([down1, down2, down3]) };
  await Promise.all([atServer.waitFor(want.up.length, 10_000), atClient.waitFor(want.down.length, 10_000)]);
  await sleep(20);
  t.ok(atServer.bytes().equals(want.up), 'server read every byte once, including the ones Node held');
  t.ok(atClient.bytes().equals(want.down), 'client got every byte once, including writes made while frozen');
  t.equal(atClient.ended || atServer.ended, false, 'no end');
  t.same([...atClient.errors, ...atServer.errors], [], 'no error');
  const again = await rejection(() => resume(image));
  t.ok(again instanceof SocketStateError && again.code === 'ERR_NOT_HELD', 'a second resume is refused (ERR_NOT_HELD)');
});

t.test('release after a same-process restore is a no-op; a second restore fails clearly', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const image = await checkpoint(srv);
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  t.doesNotThrow(() => release(image), 'release is harmless');
  const twice = await rejection(() => restore(image));
  t.ok(twice instanceof SocketStateError, 'second restore: SocketStateError');
  t.equal((twice as SocketStateError).code, 'ERR_TUPLE_IN_USE', 'code ERR_TUPLE_IN_USE');
  t.match((twice as Error).message, /still holds this connection/);
  const notHeld = await rejection(() => resume(image));
  t.equal((notHeld as SocketStateError).code, 'ERR_NOT_HELD', 'resume after restore: ERR_NOT_HELD');
  // The first restored copy is unharmed.
  const atServer = new Collector(restored);
  const atClient = new Collector(client);
  client.write('ping');
  restored.write('pong');
  await Promise.all([atServer.waitFor(4), atClient.waitFor(4)]);
  t.equal(atServer.bytes().toString(), 'ping');
  t.equal(atClient.bytes().toString(), 'pong');
});

t.test('release without restore lets go silently (no FIN, no RST)', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const atClient = new Collector(client);
  const image = await checkpoint(srv);
  release(image);
  t.ok(srv.destroyed, 'source destroyed');
  t.doesNotThrow(() => release(image), 'second release is a no-op');
  await sleep(100);
  t.equal(atClient.ended, false, 'client saw no FIN');
  t.same(atClient.errors, [], 'client saw no RST');
  t.equal(lowlevel.tcpStateName(lowlevel.tcpInfo(socketFd(client)).state), 'ESTABLISHED');
});
