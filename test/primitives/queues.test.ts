// Queue sizes (SIOCINQ/SIOCOUTQ/SIOCOUTQNSD), MSG_PEEK of both repair queues, TCP_QUEUE_SEQ
// deltas, and the drop-all freeze filter, on real loopback connections.
import t from 'tap';
import { writeSync, readSync } from 'node:fs';
import { lowlevel } from 'tcp-repair';
import { tcpPair, randomBytes, readBytes, sleep, waitFor } from '../helpers/pair.js';

t.test('SIOCINQ counts unread bytes and the recv queue peeks them without consuming', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const data = randomBytes(1000);
  t.equal(writeSync(pair.clientFd, data), 1000);
  await waitFor(() => lowlevel.queueSizes(pair.serverFd).inq === 1000, 2000, 'inq 1000');
  t.same(lowlevel.queueSizes(pair.serverFd), { inq: 1000, outq: 0, notSent: 0 });
  lowlevel.repairOn(pair.serverFd);
  t.ok(lowlevel.isInRepair(pair.serverFd));
  t.ok(lowlevel.peekQueue(pair.serverFd, 'recv', 1000).equals(data), 'peeked recv queue equals the bytes');
  t.ok(lowlevel.peekQueue(pair.serverFd, 'recv', 4096).equals(data), 'a longer peek returns only what is queued');
  t.equal(lowlevel.peekQueue(pair.serverFd, 'recv', 10).length, 10);
  t.equal(lowlevel.peekQueue(pair.serverFd, 'recv', 0).length, 0);
  t.equal(lowlevel.queueSizes(pair.serverFd).inq, 1000, 'peeking did not consume');
  lowlevel.repairOff(pair.serverFd, { windowProbe: false });
  t.notOk(lowlevel.isInRepair(pair.serverFd));
  const read = await readBytes(pair.server, 1000);
  t.ok(read.equals(data), 'the application reads the same bytes afterwards');
});

t.test('send queue peek equals unacked + unsent bytes while ACKs are dropped', async (t) => {
  const pair = await tcpPair({
    beforeConnect: (fd) => {
      lowlevel.setMaxSeg(fd, 1000); // small segments: the initial cwnd sends only part of the data
      lowlevel.setOption(fd, 'SO_SNDBUF', 1 << 20); // the blocking write below must not wait for ACKs
    },
  });
  t.teardown(() => pair.close());
  lowlevel.attachFreezeFilter(pair.clientFd); // the client never sees the server's ACKs
  const data = randomBytes(100_000);
  t.equal(writeSync(pair.clientFd, data), data.length);
  await sleep(50);
  const sizes = lowlevel.queueSizes(pair.clientFd);
  t.equal(sizes.outq, data.length, 'SIOCOUTQ: everything is still in the send queue');
  t.ok(sizes.notSent > 0 && sizes.notSent < data.length, `SIOCOUTQNSD ${sizes.notSent}: part sent, part not`);
  const info = lowlevel.tcpInfo(pair.clientFd);
  t.ok((info.unacked ?? 0) > 0, 'tcp_info shows unacked segments');
  t.equal(info.notsentBytes, sizes.notSent, 'tcp_info notsent_bytes matches SIOCOUTQNSD');
  t.ok(info.sndMss! <= 1000, `TCP_MAXSEG before connect limits the segment size (${info.sndMss})`);
  lowlevel.repairOn(pair.clientFd);
  const peeked = lowlevel.peekQueue(pair.clientFd, 'send', 200_000);
  t.equal(peeked.length, data.length, 'send queue peek covers unacked and unsent bytes');
  t.ok(peeked.equals(data), 'send queue peek equals the written bytes');
  t.ok(lowlevel.peekQueue(pair.clientFd, 'send', 1234).equals(data.subarray(0, 1234)), 'a partial peek is a prefix');
  // The server received at least the first segments: its recv seq is past the client's unacked start.
  const sentUnacked = sizes.outq - sizes.notSent;
  await waitFor(() => lowlevel.queueSizes(pair.serverFd).inq >= sentUnacked, 2000, 'server inq');
  t.equal(lowlevel.queueSizes(pair.serverFd).inq, sentUnacked, 'the server holds exactly the sent part');
  // Closed in repair mode: the server sees nothing more.
  lowlevel.closeFd(pair.clientFd);
  pair.releaseClient();
});

t.test('TCP_QUEUE_SEQ moves by exactly the bytes exchanged each way', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const { clientFd, serverFd } = pair;
  const seqs = () => {
    lowlevel.repairOn(clientFd);
    lowlevel.repairOn(serverFd);
    const s = {
      clientSend: lowlevel.getQueueSeq(clientFd, 'send'),
      clientRecv: lowlevel.getQueueSeq(clientFd, 'recv'),
      serverSend: lowlevel.getQueueSeq(serverFd, 'send'),
      serverRecv: lowlevel.getQueueSeq(serverFd, 'recv'),
    };
    lowlevel.selectQueue(clientFd, 'none');
    lowlevel.selectQueue(serverFd, 'none');
    lowlevel.repairOff(clientFd, { windowProbe: false });
    lowlevel.repairOff(serverFd, { windowProbe: false });
    return s;
  };
  const before = seqs();
  t.equal(before.clientSend, before.serverRecv, 'at rest: client send seq = server recv seq');
  t.equal(before.serverSend, before.clientRecv, 'at rest: server send seq = client recv seq');
  t.not(before.clientSend, before.serverSend, 'the two directions have independent initial sequences');

  const up = randomBytes(1234);
  const down = randomBytes(4321);
  writeSync(clientFd, up);
  t.ok((await readBytes(pair.server, up.length)).equals(up));
  pair.server.write(down);
  await waitFor(() => lowlevel.queueSizes(clientFd).inq === down.length, 2000, 'client inq');
  const got = Buffer.alloc(down.length);
  t.equal(readSync(clientFd, got), down.length);
  t.ok(got.equals(down));
  await waitFor(
    () => lowlevel.queueSizes(clientFd).outq === 0 && lowlevel.queueSizes(serverFd).outq === 0,
    2000,
    'all acked',
  );
  const after = seqs();
  const delta = (a: number, b: number) => (a - b) >>> 0;
  t.equal(delta(after.clientSend, before.clientSend), up.length, 'client send seq moved by the bytes it sent');
  t.equal(delta(after.serverRecv, before.serverRecv), up.length, 'server recv seq moved by the same');
  t.equal(delta(after.serverSend, before.serverSend), down.length, 'server send seq moved by the bytes it sent');
  t.equal(delta(after.clientRecv, before.clientRecv), down.length, 'client recv seq moved by the same');
  t.equal(after.clientSend, after.serverRecv);
  t.equal(after.serverSend, after.clientRecv);
});

t.test('recv seq includes bytes received but not read', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  lowlevel.repairOn(pair.serverFd);
  const start = lowlevel.getQueueSeq(pair.serverFd, 'recv');
  lowlevel.repairOff(pair.serverFd, { windowProbe: false });
  writeSync(pair.clientFd, randomBytes(777));
  await waitFor(() => lowlevel.queueSizes(pair.serverFd).inq === 777, 2000, 'inq');
  lowlevel.repairOn(pair.serverFd);
  t.equal((lowlevel.getQueueSeq(pair.serverFd, 'recv') - start) >>> 0, 777);
  lowlevel.repairOff(pair.serverFd, { windowProbe: false });
});

t.test('the freeze filter drops incoming segments until detached, then they arrive by retransmission', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  lowlevel.attachFreezeFilter(pair.serverFd);
  const data = randomBytes(5000);
  writeSync(pair.clientFd, data);
  await sleep(300);
  t.equal(lowlevel.queueSizes(pair.serverFd).inq, 0, 'nothing arrived while frozen');
  t.equal(lowlevel.queueSizes(pair.clientFd).outq, data.length, 'the sender holds all bytes unacked');
  t.ok((lowlevel.tcpInfo(pair.clientFd).retrans ?? 0) > 0 || (lowlevel.tcpInfo(pair.clientFd).totalRetrans ?? 0) > 0,
    'the sender retransmitted into the filter');
  lowlevel.detachFreezeFilter(pair.serverFd);
  await waitFor(() => lowlevel.queueSizes(pair.serverFd).inq === data.length, 5000, 'retransmitted bytes');
  t.ok((await readBytes(pair.server, data.length)).equals(data), 'retransmitted bytes are intact');
  await waitFor(() => lowlevel.queueSizes(pair.clientFd).outq === 0, 3000, 'acked');
  // Detaching again: no filter left.
  t.throws(() => lowlevel.detachFreezeFilter(pair.serverFd), { code: 'ENOENT' });
});
