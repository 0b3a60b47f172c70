// Error shapes: kernel failures keep Node's ErrnoException shape (code, negative errno,
// syscall) with a hint where the bare errno misleads; bad arguments are TypeError/RangeError,
// never a crash.
import t from 'tap';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isErrnoError, lowlevel, SocketStateError } from 'tcp-repair';
import { tcpPair, thrown } from '../helpers/pair.js';

const run = promisify(execFile);

t.test('EPERM without CAP_NET_ADMIN (child with no capabilities at all)', async (t) => {
  const fixture = fileURLToPath(new URL('../fixtures/no-cap.mjs', import.meta.url));
  // Still uid 0 (so it can read the checkout wherever it lives) but with an empty bounding set:
  // the exec leaves it no capabilities.
  const { stdout } = await run('setpriv', ['--bounding-set=-all', '--inh-caps=-all', process.execPath, fixture]);
  const r = JSON.parse(stdout);
  t.equal(Number.parseInt(r.capEff, 16), 0, 'the child really has no effective capabilities');
  t.match(r.repairOn, {
    name: 'Error',
    code: 'EPERM',
    errno: -1,
    syscall: 'setsockopt(TCP_REPAIR)',
    message: /^setsockopt\(TCP_REPAIR\) EPERM \(.*CAP_NET_ADMIN/,
  });
  t.match(r.rcvbufForce, { code: 'EPERM', syscall: 'setsockopt(SO_RCVBUFFORCE)', message: /CAP_NET_ADMIN/ });
  t.match(r.transparent, { code: 'EPERM', syscall: 'setsockopt(IP_TRANSPARENT)', message: /CAP_NET_ADMIN/ });
  t.equal(r.nodelay, null, 'unprivileged options still work');
});

t.test('EBADF on a closed fd, ENOTSOCK on a file', async (t) => {
  const fd = lowlevel.createSocket(4);
  lowlevel.closeFd(fd);
  const e = thrown(() => lowlevel.repairOn(fd)); // nothing between close and this call can reuse fd
  t.match(e, { code: 'EBADF', errno: -9, syscall: 'setsockopt(TCP_REPAIR)', fd, message: /not an open file descriptor/ });
  t.ok(isErrnoError(e));
  t.equal(thrown(() => lowlevel.closeFd(fd)).code, 'EBADF', 'closing twice is EBADF');

  const file = openSync(fileURLToPath(import.meta.url), 'r');
  t.teardown(() => closeSync(file));
  for (const call of [() => lowlevel.repairOn(file), () => lowlevel.tcpInfo(file), () => lowlevel.localAddress(file)]) {
    t.match(thrown(call), { code: 'ENOTSOCK', errno: -88, message: /not a socket/ });
  }
  // SIOCINQ is FIONREAD, which files answer too; SIOCOUTQ answers ENOTTY: same hint.
  t.match(thrown(() => lowlevel.queueSizes(file)), { code: 'ENOTTY', syscall: 'ioctl(SIOCOUTQ)', message: /not a socket/ });
});

t.test('a UDP socket is refused as not TCP', async (t) => {
  const udp = dgram.createSocket('udp4');
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  t.teardown(() => udp.close());
  const state = Object.getOwnPropertySymbols(udp).find((s) => String(s).includes('state'))!;
  const fd = (udp as unknown as Record<symbol, { handle: { fd: number } }>)[state]!.handle.fd;
  t.ok(fd >= 0, 'got the UDP fd');
  const e = thrown(() => lowlevel.assertTcpSocket(fd));
  t.ok(e instanceof SocketStateError);
  t.match(e, { code: 'ERR_NOT_TCP', message: /not a TCP socket/ });
  t.match(thrown(() => lowlevel.repairOn(fd)), { code: 'ENOPROTOOPT', message: /not a TCP socket/ });
  t.match(thrown(() => lowlevel.tcpInfo(fd)), { code: 'EOPNOTSUPP', message: /not a TCP socket/ });
  t.match(thrown(() => lowlevel.getRepairWindow(fd)), { message: /not a TCP socket/ });
});

t.test('EPERM hints for repair-only calls outside repair mode', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const fd = pair.clientFd;
  t.match(thrown(() => lowlevel.selectQueue(fd, 'recv')), { code: 'EPERM', syscall: 'setsockopt(TCP_REPAIR_QUEUE)', message: /repair mode/ });
  t.match(thrown(() => lowlevel.peekQueue(fd, 'send', 10)), { code: 'EPERM' });
  // The kernel answers EINVAL (not EPERM) here: the hint says why.
  t.match(thrown(() => lowlevel.setRepairOptions(fd, { mss: 1000 })), {
    code: 'EINVAL', syscall: 'setsockopt(TCP_REPAIR_OPTIONS)', message: /needs repair mode/,
  });
  // A listener cannot enter repair mode.
  const listener = lowlevel.createSocket(4);
  t.teardown(() => lowlevel.closeFd(listener));
  lowlevel.bind(listener, 4, '127.0.0.1', 0);
  lowlevel.listen(listener);
  t.match(thrown(() => lowlevel.repairOn(listener)), { code: 'EPERM', message: /not listening/ });
});

t.test('bad arguments are TypeError or RangeError, never a crash', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const fd = pair.clientFd;
  lowlevel.repairOn(fd); // so that the queue selection before the argument checks succeeds
  const any = lowlevel as unknown as Record<string, (...args: unknown[]) => unknown>;
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['string fd', () => any.repairOn!('3'), TypeError, /fd must be a number/],
    ['missing fd', () => any.tcpInfo!(), TypeError, /fd must be a number/],
    ['negative fd', () => lowlevel.repairOn(-1), RangeError, /fd must be an integer/],
    ['fractional fd', () => lowlevel.tcpInfo(1.5), RangeError, /fd must be an integer/],
    ['huge fd', () => lowlevel.tcpInfo(2 ** 40), RangeError, /fd/],
    ['family 5', () => any.createSocket!(5), TypeError, /family must be 4 or 6/],
    ['bad address', () => lowlevel.bind(fd, 4, 'not-an-ip', 0), TypeError, /not an IPv4 address/],
    ['IPv6 text on IPv4', () => lowlevel.connect(fd, 4, '::1', 80), TypeError, /not an IPv4 address/],
    ['port too large', () => lowlevel.connect(fd, 4, '127.0.0.1', 70000), RangeError, /port/],
    ['window too large', () => lowlevel.setRepairWindow(fd, { sndWl1: 1, sndWnd: 2 ** 32, maxWindow: 1, rcvWnd: 1, rcvWup: 1 }), TypeError, /uint32/],
    ['window missing fields', () => lowlevel.setRepairWindow(fd, { sndWl1: 1 } as never), TypeError, /window needs/],
    ['window not an object', () => any.setRepairWindow!(fd, 7), TypeError, /window must be an object/],
    ['wscale 15', () => lowlevel.setRepairOptions(fd, { sndWscale: 15, rcvWscale: 1 }), TypeError, /0\.\.14/],
    ['one wscale only', () => lowlevel.setRepairOptions(fd, { sndWscale: 2 }), TypeError, /together/],
    ['mss string', () => lowlevel.setRepairOptions(fd, { mss: '1400' as never }), TypeError, /mss/],
    ['negative peek length', () => any.peekQueue!(fd, 'recv', -1), RangeError, /length/],
    ['refill with a string', () => lowlevel.refillQueue(fd, 'send', 'abc' as never), TypeError, /Buffer or Uint8Array/],
    ['timestamp not a number', () => any.setTimestamp!(fd, 'x'), TypeError, /timestamp must be an integer/],
    ['seq not a number', () => any.setQueueSeq!(fd, 'send', 'x'), TypeError, /seq must be an integer/],
    ['seq NaN', () => lowlevel.setQueueSeq(fd, 'send', NaN), TypeError, /seq must be an integer/],
    ['option value string', () => lowlevel.setOption(fd, 'TCP_NODELAY', 'yes' as never), TypeError, /value must be a number/],
    ['option value too large', () => lowlevel.setOption(fd, 'SO_RCVBUF', 2 ** 31), RangeError, /value/],
    ['unknown option', () => lowlevel.getOption(fd, 'SO_NOPE' as never), TypeError, /unknown socket option SO_NOPE/],
    ['congestion not a string', () => lowlevel.setCongestion(fd, 5 as never), TypeError, /must be a string/],
    ['pid 0', () => lowlevel.fdFromProcess(0, 1), RangeError, /pid/],
  ];
  for (const [name, call, type, message] of cases) {
    const e = thrown(call);
    t.ok(e instanceof type, `${name}: ${type.name} (got ${e.name}: ${e.message})`);
    t.match(e.message, message, `${name}: message`);
  }
  lowlevel.repairOff(fd, { windowProbe: false });
  t.equal(lowlevel.tcpInfo(fd).state, 1, 'the socket is untouched after all that');
});
