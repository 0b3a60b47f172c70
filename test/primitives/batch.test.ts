// The hot-path forms checkpoint() and restore() use (src/batch.ts): the same kernel calls as the
// single primitives, so the same values, and on failure the same error naming the failing call.
import t from 'tap';
import { writeSync } from 'node:fs';
import { lowlevel, checkpoint, release } from 'tcp-repair';
import * as batch from '../../dist/esm/batch.js';
import { tcpPair, randomBytes, thrown, waitFor } from '../helpers/pair.js';
import { connectedPair } from '../helpers/streams.js';

const C = lowlevel.constants;

t.test('readInts reads the values getOption reads, in order', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const names = ['TCP_NODELAY', 'SO_KEEPALIVE', 'TCP_KEEPIDLE', 'SO_SNDBUF', 'IP_TTL', 'SO_REUSEADDR'] as const;
  lowlevel.setOption(pair.serverFd, 'TCP_KEEPIDLE', 321);
  const spec = batch.intSpec(names.map((n) => [n.startsWith('SO_') ? C.SOL_SOCKET : n.startsWith('IP_') ? C.IPPROTO_IP : C.SOL_TCP, C[n]!]));
  const out = batch.readInts(pair.serverFd, spec, new Int32Array(names.length));
  t.same([...out], names.map((n) => lowlevel.getOption(pair.serverFd, n)));
  t.equal(out[2], 321);
});

t.test('IntWrites applies in order and stops at the first failure, naming it', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const w = batch.intWrites();
  w.set(C.SOL_TCP, C.TCP_NODELAY!, true).set(C.SOL_TCP, C.TCP_QUEUE_SEQ!, 1234).set(C.SOL_TCP, C.TCP_KEEPIDLE!, 99);
  // TCP_QUEUE_SEQ outside repair mode: refused by the kernel, as with lowlevel.setQueueSeq.
  const error = thrown(() => w.apply(pair.serverFd));
  t.equal(error.syscall, 'setsockopt(TCP_QUEUE_SEQ)');
  t.ok(typeof error.code === 'string' && (error.code === 'EPERM' || error.code === 'EINVAL'), `errno code ${String(error.code)}`);
  t.equal(lowlevel.getOption(pair.serverFd, 'TCP_NODELAY'), 1, 'the option before it was applied');
  t.not(lowlevel.getOption(pair.serverFd, 'TCP_KEEPIDLE'), 99, 'the option after it was not');
  // Emptied by the failure: the next batch starts clean.
  batch.intWrites().set(C.SOL_TCP, C.TCP_KEEPIDLE!, 99).apply(pair.serverFd);
  t.equal(lowlevel.getOption(pair.serverFd, 'TCP_KEEPIDLE'), 99);
});

t.test('an option outside the allow-list is a TypeError, before any call', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  t.throws(() => batch.intWrites().set(C.SOL_TCP, 9999, 1).apply(pair.serverFd), TypeError);
  t.throws(() => batch.readInts(pair.serverFd, Int32Array.from([C.SOL_TCP, 9999]), new Int32Array(1)), TypeError);
});

t.test('TCP_INFO, window, queue sizes, peeks and names as the object forms give them', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const data = randomBytes(3000);
  t.equal(writeSync(pair.clientFd, data), data.length);
  await waitFor(() => lowlevel.queueSizes(pair.serverFd).inq === data.length, 2000, 'inq');
  const fd = pair.serverFd;
  const info = lowlevel.tcpInfo(fd);
  const basics = batch.tcpInfoBasics(fd);
  t.same(basics, { state: info.state, sack: info.sack, timestamps: info.timestamps, windowScaling: info.windowScaling, sndWscale: info.sndWscale, rcvWscale: info.rcvWscale, usecTimestamps: (info.options & 64) !== 0 });
  const sizes = lowlevel.queueSizes(fd);
  t.same([...batch.queueSizes(fd)], [sizes.inq, sizes.outq, sizes.notSent]);
  t.same(batch.localEndpoint(fd), { address: lowlevel.localAddress(fd).address, port: lowlevel.localAddress(fd).port });
  t.same(batch.peerEndpoint(fd), { address: lowlevel.peerAddress(fd).address, port: lowlevel.peerAddress(fd).port });
  lowlevel.repairOn(fd);
  const window = batch.readWindow(fd);
  t.same(window, lowlevel.getRepairWindow(fd));
  batch.writeWindow(fd, window!, 0);
  t.equal(lowlevel.getRepairWindow(fd).sndWnd, 0, 'the override was written');
  batch.writeWindow(fd, window!);
  t.same(lowlevel.getRepairWindow(fd), window, 'and the original written back');
  lowlevel.selectQueue(fd, 'recv');
  const into = Buffer.alloc(data.length + 10, 0xee);
  t.equal(batch.peekInto(fd, into, 10, data.length), data.length);
  t.ok(into.subarray(10).equals(data), 'peeked at the offset');
  t.equal(into[9], 0xee, 'nothing before it touched');
  t.equal(batch.peekInto(fd, into, 0, 0), 0);
  t.throws(() => batch.peekInto(fd, into, 20, data.length), RangeError, 'a range past the buffer is refused');
  lowlevel.selectQueue(fd, 'none');
  lowlevel.repairOff(fd, { windowProbe: false });
});

t.test('checkpoint records the application SO_REUSEADDR, not the value repair mode reports', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  // A client socket keeps SO_REUSEADDR off; in repair mode the kernel would report 2 (forced).
  const image = await checkpoint(pair.client);
  t.equal(image.socketOptions.reuseAddress, false);
  release(image);
  const accepted = await checkpoint(pair.srv);
  t.equal(accepted.socketOptions.reuseAddress, true, 'accepted sockets inherit the listener value (Node sets it)');
  release(accepted);
});
