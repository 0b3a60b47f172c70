// Socket lifecycle and options: kind, addresses, dup/close, integer options, congestion,
// freebind/transparent, shutdown, tcp_info figures, and pidfd_getfd on a child's socket.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lowlevel, TcpState, constants } from 'tcp-repair';
import { randomBytes, readBytes, tcpPair, thrown, waitFor } from '../helpers/pair.js';

t.test('socketKind, assertTcpSocket, local and peer addresses (IPv4 and IPv6)', async (t) => {
  for (const family of [4, 6] as const) {
    const pair = await tcpPair({ family });
    t.teardown(() => pair.close());
    t.equal(lowlevel.assertTcpSocket(pair.clientFd), family);
    const local = lowlevel.localAddress(pair.clientFd);
    const peer = lowlevel.peerAddress(pair.clientFd);
    t.same(peer, { ...peer, address: pair.address, port: pair.port, family: family === 4 ? 'IPv4' : 'IPv6' });
    t.equal(local.port, pair.server.remotePort, 'client local port = what the server sees as remote');
    t.equal(local.address, pair.server.remoteAddress);
    t.same(lowlevel.peerAddress(pair.serverFd).port, local.port);
    t.same(lowlevel.localAddress(pair.serverFd).port, pair.port);
  }
});

t.test('createSocket gives a closed TCP socket of the family; listen puts it in LISTEN', async (t) => {
  const fd = lowlevel.createSocket(6);
  t.teardown(() => lowlevel.closeFd(fd));
  t.equal(lowlevel.getOption(fd, 'SO_DOMAIN'), constants.AF_INET6);
  t.equal(lowlevel.getOption(fd, 'SO_TYPE'), constants.SOCK_STREAM);
  t.equal(lowlevel.getOption(fd, 'SO_PROTOCOL'), constants.IPPROTO_TCP);
  t.equal(lowlevel.tcpInfo(fd).state, TcpState.CLOSE);
  lowlevel.bind(fd, 6, '::1', 0);
  lowlevel.listen(fd, 4);
  t.equal(lowlevel.tcpInfo(fd).state, TcpState.LISTEN);
  t.equal(lowlevel.localAddress(fd).address, '::1');
  t.ok(lowlevel.localAddress(fd).port > 0);
});

t.test('dupFd and closeFd', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const copy = lowlevel.dupFd(pair.clientFd);
  t.not(copy, pair.clientFd);
  t.same(lowlevel.localAddress(copy), lowlevel.localAddress(pair.clientFd), 'the same socket');
  lowlevel.setOption(copy, 'TCP_NODELAY', true);
  t.equal(lowlevel.getOption(pair.clientFd, 'TCP_NODELAY'), 1, 'an option set through the dup shows on the original');
  lowlevel.closeFd(copy);
  t.equal(thrown(() => lowlevel.tcpInfo(copy)).code, 'EBADF', 'the dup is gone');
  t.equal(lowlevel.tcpInfo(pair.clientFd).state, TcpState.ESTABLISHED, 'closing a dup does not close the socket');
});

t.test('integer options read back what was set', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  const fd = pair.clientFd;
  for (const v of [1, 0]) {
    lowlevel.setOption(fd, 'TCP_NODELAY', v);
    t.equal(lowlevel.getOption(fd, 'TCP_NODELAY'), v, `TCP_NODELAY ${v}`);
  }
  lowlevel.setOption(fd, 'SO_KEEPALIVE', true);
  t.equal(lowlevel.getOption(fd, 'SO_KEEPALIVE'), 1);
  lowlevel.setOption(fd, 'TCP_KEEPIDLE', 77);
  lowlevel.setOption(fd, 'TCP_KEEPINTVL', 13);
  lowlevel.setOption(fd, 'TCP_KEEPCNT', 4);
  t.same([lowlevel.getOption(fd, 'TCP_KEEPIDLE'), lowlevel.getOption(fd, 'TCP_KEEPINTVL'), lowlevel.getOption(fd, 'TCP_KEEPCNT')],
    [77, 13, 4], 'keepalive idle/interval/count');
  lowlevel.setOption(fd, 'SO_KEEPALIVE', false);
  t.equal(lowlevel.getOption(fd, 'SO_KEEPALIVE'), 0);

  lowlevel.setOption(fd, 'SO_SNDBUF', 100_000);
  t.equal(lowlevel.getOption(fd, 'SO_SNDBUF'), 200_000, 'SO_SNDBUF: the kernel doubles the value');
  lowlevel.setOption(fd, 'SO_RCVBUF', 100_000);
  t.equal(lowlevel.getOption(fd, 'SO_RCVBUF'), 200_000, 'SO_RCVBUF: the kernel doubles the value');
  // The plain options are capped by net.core.[rw]mem_max; the FORCE variants are not.
  lowlevel.setOption(fd, 'SO_RCVBUF', 256 << 20);
  const capped = lowlevel.getOption(fd, 'SO_RCVBUF');
  t.ok(capped < 512 << 20, `SO_RCVBUF is capped (${capped})`);
  lowlevel.setOption(fd, 'SO_RCVBUFFORCE', 256 << 20);
  t.equal(lowlevel.getOption(fd, 'SO_RCVBUF'), 512 << 20, 'SO_RCVBUFFORCE passes the cap');
  lowlevel.setOption(fd, 'SO_SNDBUFFORCE', 64 << 20);
  t.equal(lowlevel.getOption(fd, 'SO_SNDBUF'), 128 << 20, 'SO_SNDBUFFORCE passes the cap');

  lowlevel.setOption(fd, 'IP_TOS', 0x28);
  t.equal(lowlevel.getOption(fd, 'IP_TOS'), 0x28, 'IP_TOS');
  const v6 = await tcpPair({ family: 6 });
  t.teardown(() => v6.close());
  lowlevel.setOption(v6.clientFd, 'IPV6_TCLASS', 0x48);
  t.equal(lowlevel.getOption(v6.clientFd, 'IPV6_TCLASS'), 0x48, 'IPV6_TCLASS');
  lowlevel.setOption(fd, 'TCP_USER_TIMEOUT', 12345);
  t.equal(lowlevel.getOption(fd, 'TCP_USER_TIMEOUT'), 12345, 'TCP_USER_TIMEOUT');
});

t.test('congestion control: reno and cubic', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  lowlevel.setCongestion(pair.clientFd, 'reno');
  t.equal(lowlevel.getCongestion(pair.clientFd), 'reno');
  lowlevel.setCongestion(pair.clientFd, 'cubic');
  t.equal(lowlevel.getCongestion(pair.clientFd), 'cubic');
  const e = thrown(() => lowlevel.setCongestion(pair.clientFd, 'no-such-algorithm'));
  t.equal(e.code, 'ENOENT');
  t.equal(e.syscall, 'setsockopt(TCP_CONGESTION)');
  t.equal(lowlevel.getCongestion(pair.clientFd), 'cubic', 'unchanged after the refusal');
});

t.test('freebind and transparent let a socket bind an address the host does not own', async (t) => {
  for (const [family, address] of [[4, '198.18.0.77'], [6, 'fd00::77']] as const) {
    const plain = lowlevel.createSocket(family);
    t.teardown(() => lowlevel.closeFd(plain));
    t.equal(thrown(() => lowlevel.bind(plain, family, address, 0)).code, 'EADDRNOTAVAIL', `IPv${family}: refused without`);

    const free = lowlevel.createSocket(family);
    t.teardown(() => lowlevel.closeFd(free));
    lowlevel.setFreebind(free, family);
    t.equal(lowlevel.getOption(free, family === 4 ? 'IP_FREEBIND' : 'IPV6_FREEBIND'), 1);
    lowlevel.bind(free, family, address, 0);
    t.equal(lowlevel.localAddress(free).address, address, `IPv${family}: bound with freebind`);

    const transparent = lowlevel.createSocket(family);
    t.teardown(() => lowlevel.closeFd(transparent));
    lowlevel.setTransparent(transparent, family);
    t.equal(lowlevel.getOption(transparent, family === 4 ? 'IP_TRANSPARENT' : 'IPV6_TRANSPARENT'), 1);
    lowlevel.bind(transparent, family, address, 0);
    t.equal(lowlevel.localAddress(transparent).address, address, `IPv${family}: bound with transparent`);
    lowlevel.setTransparent(transparent, family, false);
    t.equal(lowlevel.getOption(transparent, family === 4 ? 'IP_TRANSPARENT' : 'IPV6_TRANSPARENT'), 0);
  }
});

t.test('shutdown(write) sends FIN: the peer ends, the socket goes to FIN_WAIT2', async (t) => {
  const pair = await tcpPair({ allowHalfOpen: true });
  t.teardown(() => pair.close());
  const ended = once(pair.server, 'end');
  pair.server.resume();
  lowlevel.shutdown(pair.clientFd, 'write');
  await ended;
  await waitFor(() => lowlevel.tcpInfo(pair.clientFd).state === TcpState.FIN_WAIT2, 2000, 'FIN_WAIT2');
  t.equal(lowlevel.tcpInfo(pair.clientFd).state, TcpState.FIN_WAIT2);
  t.equal(lowlevel.tcpInfo(pair.serverFd).state, TcpState.CLOSE_WAIT);
  t.equal(lowlevel.tcpStateName(lowlevel.tcpInfo(pair.serverFd).state), 'CLOSE_WAIT');
  t.equal(thrown(() => lowlevel.shutdown(lowlevel.createSocket(4), 'both')).code, 'ENOTCONN');
});

t.test('tcp_info counts the bytes exchanged', async (t) => {
  const pair = await tcpPair();
  t.teardown(() => pair.close());
  writeSync(pair.clientFd, randomBytes(1000));
  await readBytes(pair.server, 1000);
  await waitFor(() => lowlevel.queueSizes(pair.clientFd).outq === 0, 2000, 'acked');
  const client = lowlevel.tcpInfo(pair.clientFd);
  const server = lowlevel.tcpInfo(pair.serverFd);
  t.equal(client.state, TcpState.ESTABLISHED);
  t.equal(client.bytesAcked, 1001, 'client: bytes_acked (the SYN counts for one)');
  t.equal(client.bytesSent, 1000, 'client: bytes_sent');
  t.equal(server.bytesReceived, 1000, 'server: bytes_received');
  t.equal(client.dataSegsOut, 1);
  t.equal(server.dataSegsIn, 1);
  t.ok(client.rtt! > 0, 'an RTT sample');
  t.ok(client.sndMss! > 1000 && client.sndMss! <= 65483, `loopback MSS ${client.sndMss}`);
  t.equal(client.timestamps, true, 'loopback negotiates timestamps');
  t.equal(client.sack, true, 'and SACK');
});

t.test('fdFromProcess (pidfd_getfd) copies a child process socket', async (t) => {
  const fixture = fileURLToPath(new URL('../fixtures/hold-socket.mjs', import.meta.url));
  const child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const held = JSON.parse(line.toString());
  t.equal(held.pid, child.pid);
  const serverCopy = lowlevel.fdFromProcess(held.pid, held.serverFd);
  t.teardown(() => lowlevel.closeFd(serverCopy));
  const clientCopy = lowlevel.fdFromProcess(held.pid, held.clientFd);
  t.teardown(() => lowlevel.closeFd(clientCopy));
  t.equal(lowlevel.tcpInfo(serverCopy).state, TcpState.ESTABLISHED);
  t.equal(lowlevel.tcpInfo(serverCopy).bytesReceived, 500, "the child's server received its 500 bytes");
  t.equal(lowlevel.queueSizes(serverCopy).inq, 500, 'unread in the kernel');
  t.equal(lowlevel.localAddress(clientCopy).port, held.clientPort, "the child's client socket");
  t.equal(lowlevel.peerAddress(serverCopy).port, held.clientPort);
  t.equal(thrown(() => lowlevel.fdFromProcess(held.pid, 9999)).code, 'EBADF', 'a fd the child does not have');
});
