/**
 * ESTABLISHED connections with bytes in every queue: Node's unconsumed read buffer, the kernel
 * receive queue, sent-but-unacknowledged (the client drops everything while a freeze filter is on
 * its fd), unsent kernel bytes and Node's pending writes (the client does not read).
 */
import t from 'tap';
import { checkpoint, restore, encodeImage, decodeImage, lowlevel, socketFd, type SocketImage } from 'tcp-repair';
import { Collector, connectedPair, pattern, sleep, until, type PairOptions } from '../helpers/streams.js';

async function everyQueue(t: Tap.Test, pairOptions: PairOptions, expect: { family: 4 | 6; local: string }) {
  const pair = await connectedPair(pairOptions);
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const clientFd = socketFd(client);
  const srvFd = socketFd(srv);
  // Client -> server first: more than Node reads ahead (highWaterMark), so bytes wait both in
  // Node's readable buffer and in the kernel receive queue. The server has no 'data' listener.
  const up = pattern(512 * 1024, 2);
  client.write(up);
  await until(() => srv.readableLength > 0 && lowlevel.queueSizes(srvFd).inq > 0, 5000, 'server read buffers to fill');
  await sleep(20);
  // Then the client drops every segment: what the server sends stays unacknowledged.
  lowlevel.attachFreezeFilter(clientFd);
  client.pause();
  // Server -> client: far more than the client's window, so bytes are sent-unacked, unsent in
  // the kernel, and pending in Node.
  const down = pattern(6 * 1024 * 1024, 1);
  srv.write(down);
  await sleep(30);

  const before = lowlevel.queueSizes(srvFd);
  const nodeRead = srv.readableLength;
  // Bytes libuv has not handed to the kernel yet (writableLength also counts the part written).
  const nodePending = (srv as unknown as { _handle: { writeQueueSize: number } })._handle.writeQueueSize;
  t.ok(before.inq > 0, `kernel receive queue holds ${before.inq} bytes`);
  t.ok(nodeRead > 0, `Node holds ${nodeRead} unconsumed bytes`);
  t.ok(before.outq - before.notSent > 0, `kernel holds ${before.outq - before.notSent} sent-unacked bytes`);
  t.ok(nodePending > 0, `Node holds ${nodePending} pending write bytes`);

  const image = await checkpoint(srv);
  t.equal(image.state, 'ESTABLISHED');
  t.equal(image.family, expect.family);
  t.equal(image.local.address, expect.local);
  t.equal(image.local.port, (pair.server.address() as { port: number }).port);
  t.equal(image.peer.port, client.localPort);
  t.equal(image.recvQueue.length, nodeRead + before.inq, 'recvQueue = Node buffer + kernel queue');
  t.ok(image.recvQueue.equals(up.subarray(0, image.recvQueue.length)), 'recvQueue is the head of what the client sent, in order');
  t.ok(image.sentUnacked.length > 0, 'image has sent-unacked bytes');
  t.ok(image.unsent.length >= before.notSent + nodePending, 'unsent covers the kernel tail and Node pending writes');
  t.equal(image.sentUnacked.length + image.unsent.length, down.length, 'nothing of the download was acknowledged');
  t.ok(Buffer.concat([image.sentUnacked, image.unsent]).equals(down), 'send queues are exactly what the server wrote');
  // write_seq is after everything queued; the unacked bytes start right after the handshake.
  t.ok(image.options.sack && image.options.timestamps && image.options.sndWscale !== null, 'negotiated options captured');
  t.ok(image.window, 'window captured');

  const decoded = decodeImage(encodeImage(image));
  t.same(stripBuffers(decoded), stripBuffers(image), 'image survives encode/decode');

  const restored = restore(decoded);
  // Read the sequence numbers back at once (no event-loop turn: Node cannot read in repair mode).
  const fd = socketFd(restored);
  lowlevel.repairOn(fd);
  const recvSeq = lowlevel.getQueueSeq(fd, 'recv');
  const sendSeq = lowlevel.getQueueSeq(fd, 'send');
  lowlevel.selectQueue(fd, 'none');
  lowlevel.repairOff(fd);
  t.equal(recvSeq, image.recvSeq, 'restored rcv_nxt equals the image');
  t.equal(sendSeq, (image.sendSeq - restored.writableLength) >>> 0, 'restored write_seq equals the image (less what Node still holds)');

  const atServer = new Collector(restored);
  const atClient = new Collector(client);
  t.teardown(() => restored.destroy());
  lowlevel.detachFreezeFilter(clientFd);
  client.resume();
  // And both directions keep working after the restore.
  const tailUp = pattern(100_000, 3);
  const tailDown = pattern(100_000, 4);
  client.write(tailUp);
  restored.write(tailDown);
  await Promise.all([atServer.waitFor(up.length + tailUp.length, 15_000), atClient.waitFor(down.length + tailDown.length, 15_000)]);
  await sleep(20);
  t.ok(atServer.bytes().equals(Buffer.concat([up, tailUp])), 'server got every client byte exactly once, in order');
  t.ok(atClient.bytes().equals(Buffer.concat([down, tailDown])), 'client got every server byte exactly once, in order');
  t.same(atClient.errors, [], 'no client error');
  t.equal(atClient.ended, false, 'client saw no end');
  t.ok(srv.destroyed, 'the source socket was let go');
}

function stripBuffers(image: SocketImage) {
  return { ...image, recvQueue: image.recvQueue.toString('hex'), sentUnacked: image.sentUnacked.toString('hex'), unsent: image.unsent.toString('hex') };
}

t.test('IPv4 127.0.0.1, data in every queue', (t) => everyQueue(t, { listen: '127.0.0.1' }, { family: 4, local: '127.0.0.1' }));
t.test('IPv6 ::1, data in every queue', (t) => everyQueue(t, { listen: '::1' }, { family: 6, local: '::1' }));
t.test('v4-mapped peer (listen on ::, connect to 127.0.0.1)', (t) =>
  everyQueue(t, { listen: '::', connect: '127.0.0.1' }, { family: 6, local: '::ffff:127.0.0.1' }));
