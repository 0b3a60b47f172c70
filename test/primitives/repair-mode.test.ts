// TCP_REPAIR on and off, TCP_REPAIR_WINDOW, TCP_TIMESTAMP, a socket going through repair mode
// and carrying data afterwards, and a close in repair mode that sends nothing.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { lowlevel, TcpState } from 'tcp-repair';
import { adopt, randomBytes, readBytes, sha256, sleep, tcpPair, thrown, writeAll } from '../helpers/pair.js';
import { createNetns } from '../helpers/netns.js';

t.test('repair on, off, and off without a window probe', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const fd = pair.clientFd;
  t.equal(lowlevel.isInRepair(fd), false);
  t.equal(lowlevel.getOption(fd, 'TCP_REPAIR'), 0);
  lowlevel.repairOn(fd);
  t.equal(lowlevel.isInRepair(fd), true);
  t.equal(lowlevel.getOption(fd, 'TCP_REPAIR'), 1);
  lowlevel.repairOff(fd);
  t.equal(lowlevel.isInRepair(fd), false, 'off (with window probe)');
  lowlevel.repairOn(fd);
  lowlevel.repairOff(fd, { windowProbe: false });
  t.equal(lowlevel.isInRepair(fd), false, 'off without window probe (TCP_REPAIR_OFF_NO_WP)');
  t.equal(lowlevel.tcpInfo(fd).state, TcpState.ESTABLISHED);
});

t.test('TCP_REPAIR_WINDOW: read, set a smaller valid window, read back; the kernel checks', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const fd = pair.serverFd;
  t.equal(thrown(() => lowlevel.getRepairWindow(fd)).code, 'EPERM', 'only in repair mode');
  lowlevel.repairOn(fd);
  const rcvNxt = lowlevel.getQueueSeq(fd, 'recv');
  const w = lowlevel.getRepairWindow(fd);
  t.equal(w.rcvWup, rcvNxt, 'idle connection: rcv_wup = rcv_nxt');
  t.equal(w.sndWl1, rcvNxt, 'idle connection: snd_wl1 = rcv_nxt (last window update came with the ACK)');
  t.ok(w.maxWindow >= w.sndWnd && w.sndWnd > 0, `max_window ${w.maxWindow} >= snd_wnd ${w.sndWnd}`);
  t.ok(w.rcvWnd > 1000, `rcv_wnd ${w.rcvWnd}`);

  const smaller = { ...w, rcvWnd: w.rcvWnd - 1000, sndWnd: w.sndWnd - 2000 };
  lowlevel.setRepairWindow(fd, smaller);
  t.same(lowlevel.getRepairWindow(fd), smaller, 'the modified window reads back exactly');

  const inval = (window: typeof w) => thrown(() => lowlevel.setRepairWindow(fd, window));
  let e = inval({ ...smaller, maxWindow: smaller.sndWnd - 1 });
  t.equal(e.code, 'EINVAL', 'max_window < snd_wnd is refused');
  t.equal(e.syscall, 'setsockopt(TCP_REPAIR_WINDOW)');
  e = inval({ ...smaller, rcvWup: (rcvNxt + 1) >>> 0 });
  t.equal(e.code, 'EINVAL', 'rcv_wup after rcv_nxt is refused');
  e = inval({ ...smaller, rcvWnd: 10, sndWl1: (rcvNxt + 100) >>> 0 });
  t.equal(e.code, 'EINVAL', 'snd_wl1 after rcv_nxt + rcv_wnd is refused');
  t.same(lowlevel.getRepairWindow(fd), smaller, 'refused calls changed nothing');

  lowlevel.repairOff(fd);
  t.equal(thrown(() => lowlevel.setRepairWindow(fd, w)).code, 'EPERM', 'set only in repair mode');
  // The connection still works after the window was rewritten.
  const data = randomBytes(20_000);
  const client = adopt(lowlevel.dupFd(pair.clientFd));
  t.teardown(() => client.destroy());
  const got = readBytes(client, data.length);
  await writeAll(pair.server, data);
  t.equal(sha256(await got), sha256(data));
});

t.test('TCP_TIMESTAMP: set in repair mode, read back, and it keeps ticking', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const fd = pair.clientFd;
  const t0 = lowlevel.getTimestamp(fd);
  t.equal(thrown(() => lowlevel.setTimestamp(fd, t0)).code, 'EPERM', 'setting needs repair mode');
  lowlevel.repairOn(fd);
  const target = (t0 + 50_000_000) >>> 0;
  lowlevel.setTimestamp(fd, target);
  const t1 = lowlevel.getTimestamp(fd);
  t.ok(((t1 - target) >>> 0) < 50, `reads back the value set (${t1} vs ${target})`);
  await sleep(30);
  const t2 = lowlevel.getTimestamp(fd);
  const step = (t2 - t1) >>> 0;
  t.ok(step >= 25 && step < 1000, `the clock moves on from the new offset (+${step} ms)`);
  lowlevel.repairOff(fd, { windowProbe: false });
  t.ok(((lowlevel.getTimestamp(fd) - target) >>> 0) < 1000, 'the offset stays after repair off');
});

t.test('in and out of repair mode, a connection keeps carrying data both ways', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const before = randomBytes(64 * 1024);
  const client = adopt(lowlevel.dupFd(pair.clientFd));
  t.teardown(() => client.destroy());
  const got0 = readBytes(pair.server, before.length);
  await writeAll(client, before);
  t.equal(sha256(await got0), sha256(before));

  for (const fd of [pair.clientFd, pair.serverFd]) lowlevel.repairOn(fd);
  t.ok(lowlevel.isInRepair(pair.clientFd) && lowlevel.isInRepair(pair.serverFd));
  lowlevel.repairOff(pair.clientFd);
  lowlevel.repairOff(pair.serverFd, { windowProbe: false });

  const up = randomBytes(1 << 20);
  const down = randomBytes(1 << 20);
  const atServer = readBytes(pair.server, up.length, 20_000);
  const atClient = readBytes(client, down.length, 20_000);
  await Promise.all([writeAll(client, up), writeAll(pair.server, down)]);
  t.equal(sha256(await atServer), sha256(up), '1 MiB client → server intact');
  t.equal(sha256(await atClient), sha256(down), '1 MiB server → client intact');
});

const fixture = fileURLToPath(new URL('../fixtures/close-in-repair.mjs', import.meta.url));

t.test('a socket closed in repair mode sends neither FIN nor RST (own network namespace)', async (t) => {
  const ns = createNetns('tcprt-close');
  t.teardown(() => ns.remove());
  const repair = await ns.node(fixture, ['repair']);
  t.equal(repair.code, 0, repair.stderr);
  const r = JSON.parse(repair.stdout);
  t.equal(r.outRsts, 0, 'TcpOutRsts did not move');
  t.equal(r.outSegs, 0, 'no segment at all left the namespace stack (no FIN)');
  t.same(r.seen, [], "the peer saw no 'end', no 'error'");
  t.equal(r.peerState, TcpState.ESTABLISHED, 'the peer is still ESTABLISHED');

  // Control: the same close outside repair mode is visible, so the checks above can fail.
  const plain = await ns.node(fixture, ['plain']);
  t.equal(plain.code, 0, plain.stderr);
  const p = JSON.parse(plain.stdout);
  t.ok(p.outSegs > 0, `a plain close sends segments (${p.outSegs})`);
  t.ok(p.seen.includes('end'), "and the peer sees 'end'");
  t.equal(p.peerState, TcpState.CLOSE_WAIT, 'the peer is in CLOSE_WAIT');
});
