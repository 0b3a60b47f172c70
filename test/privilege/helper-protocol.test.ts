// tcp-repair-helper validates what it accepts: only allowed users, exactly one fd, only TCP
// sockets of its own network namespace, only its listed operations and value ranges; it keeps
// no fd, and keeps no capability but CAP_NET_ADMIN even when started with all of them.
import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { constants } from 'node:os';
import { openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lowlevel } from 'tcp-repair';
import { native } from '../../dist/esm/load-addon.cjs';
import { createNetns } from '../helpers/netns.js';
import { socketDir, startHelper } from '../helpers/unprivileged.js';

const MAGIC = 0x31485254;
const ROOT_FULL: string[] = []; // started as this (root) process is: the helper must drop the rest itself

function request(operation: number, value: number, options: { magic?: number; length?: number } = {}): Buffer {
  const b = Buffer.alloc(options.length ?? 12);
  if (b.length >= 12) {
    b.writeUInt32LE(options.magic ?? MAGIC, 0);
    b.writeUInt16LE(operation, 4);
    b.writeInt32LE(value, 8);
  }
  return b;
}

function ask(sock: number, bytes: Buffer, fds: number[]): number | 'closed' {
  native.sendWithFds(sock, bytes, fds);
  const answer = native.recvMessage(sock, 64);
  if (answer.length === 0) return 'closed';
  if (answer.readUInt32LE(0) !== MAGIC) throw new Error('bad magic in answer');
  return answer.readInt32LE(4);
}

const E = async (name: string) => -constants.errno[name as 'EINVAL'];

async function tcpSocket() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const fd = lowlevel.createSocket(4);
  lowlevel.connect(fd, 4, '127.0.0.1', (server.address() as net.AddressInfo).port);
  return { fd, close: () => { lowlevel.closeFd(fd); server.close(); } };
}

t.test('accepts its operations on a TCP socket, refuses everything else', async (t) => {
  const dir = socketDir(t, 0);
  const socket = path.join(dir, 'helper.sock');
  const helper = await startHelper(t, { socket, wrap: ROOT_FULL, args: ['--allow-uid', '0', '--max-buffer', '1048576'] });
  const sock = native.unixConnect(socket, 2000);
  t.teardown(() => native.close(sock));
  const tcp = await tcpSocket();
  t.teardown(tcp.close);

  t.equal(ask(sock, request(1, 1), [tcp.fd]), 0, 'repair on');
  t.ok(lowlevel.isInRepair(tcp.fd), 'the switch applies to our own socket');
  t.equal(ask(sock, request(2, 0), [tcp.fd]), 0, 'freeze filter attached');
  t.equal(ask(sock, request(3, 0), [tcp.fd]), 0, 'filter detached');
  t.equal(ask(sock, request(4, 1 << 20), [tcp.fd]), 0, 'SO_SNDBUFFORCE within the limit');
  t.equal(ask(sock, request(6, 1), [tcp.fd]), 0, 'IP_TRANSPARENT');
  t.equal(ask(sock, request(7, 42), [tcp.fd]), 0, 'SO_MARK');
  t.equal(lowlevel.getOption(tcp.fd, 'SO_MARK'), 42);
  t.equal(ask(sock, request(1, 0), [tcp.fd]), 0, 'repair off');
  t.notOk(lowlevel.isInRepair(tcp.fd));

  const udp = dgram.createSocket('udp4');
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  t.teardown(() => udp.close());
  const udpFd = (udp as unknown as Record<symbol, { handle: { fd: number } }>)[Object.getOwnPropertySymbols(udp).find((s) => String(s).includes('state'))!]!.handle.fd;
  const file = openSync(fileURLToPath(import.meta.url), 'r');
  t.teardown(() => closeSync(file));
  const refusals: Array<[string, Buffer, number[], string]> = [
    ['a UDP socket', request(1, 1), [udpFd], 'EPROTONOSUPPORT'],
    ['a Unix socket', request(1, 1), [sock], 'EAFNOSUPPORT'],
    ['a file', request(1, 1), [file], 'ENOTSOCK'],
    ['an unknown operation', request(99, 0), [tcp.fd], 'EOPNOTSUPP'],
    ['repair value 5', request(1, 5), [tcp.fd], 'EINVAL'],
    ['a buffer over --max-buffer', request(5, 2 << 20), [tcp.fd], 'ERANGE'],
    ['a negative buffer', request(4, -1), [tcp.fd], 'ERANGE'],
    ['transparent 2', request(6, 2), [tcp.fd], 'EINVAL'],
    ['priority 7 (over the default 6)', request(8, 7), [tcp.fd], 'ERANGE'],
    ['a value for the filter (no BPF code accepted)', request(2, 1), [tcp.fd], 'EINVAL'],
    ['no fd', request(1, 1), [], 'EINVAL'],
    ['two fds', request(1, 1), [tcp.fd, tcp.fd], 'EINVAL'],
    ['a short request', request(1, 1, { length: 8 }), [tcp.fd], 'EBADMSG'],
    ['a long request', request(1, 1, { length: 16 }), [tcp.fd], 'EBADMSG'],
    ['a wrong magic', request(1, 1, { magic: 0x12345678 }), [tcp.fd], 'EBADMSG'],
  ];
  for (const [what, bytes, fds, code] of refusals) t.equal(ask(sock, bytes, fds), await E(code), `refuses ${what} with ${code}`);
  t.notOk(lowlevel.isInRepair(tcp.fd), 'no refused request touched the socket');

  const fds = () => readdirSync(`/proc/${helper.pid}/fd`).length;
  const before = fds();
  for (let i = 0; i < 100; i++) {
    ask(sock, request(1, 1), [tcp.fd]);
    ask(sock, request(1, 0), [tcp.fd]);
    ask(sock, request(1, 1), [tcp.fd, tcp.fd, tcp.fd]);
    ask(sock, request(99, 0), [udpFd]);
  }
  t.equal(fds(), before, `the helper keeps no fd (${before} before and after 400 requests)`);

  const status = readFileSync(`/proc/${helper.pid}/status`, 'utf8');
  const cap = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*(\\w+)`, 'm').exec(status)![1]}`);
  t.equal(cap('CapEff'), 1n << 12n, 'started with every capability, it keeps only CAP_NET_ADMIN (effective)');
  t.equal(cap('CapPrm'), 1n << 12n, '… permitted');
  t.equal(cap('CapBnd'), 1n << 12n, '… bounding');
  t.equal(cap('CapInh') | cap('CapAmb'), 0n, 'nothing inheritable or ambient');
  t.match(status, /^NoNewPrivs:\s*1$/m, 'no_new_privs');
  t.match((helper as unknown as { stderrText(): string }).stderrText(), /refused repair\(5\): Invalid argument/, 'refusals are logged');
});

t.test('refuses a user it does not allow', async (t) => {
  const dir = socketDir(t, 0);
  const socket = path.join(dir, 'helper.sock');
  await startHelper(t, { socket, wrap: ROOT_FULL, args: ['--allow-uid', '12345'] });
  const sock = native.unixConnect(socket, 2000);
  t.teardown(() => native.close(sock));
  const tcp = await tcpSocket();
  t.teardown(tcp.close);
  let outcome: unknown;
  try {
    outcome = ask(sock, request(1, 1), [tcp.fd]);
  } catch (error) {
    outcome = (error as { code: string }).code;
  }
  t.ok(outcome === 'closed' || outcome === 'ECONNRESET' || outcome === 'EPIPE', `connection closed without an answer (${String(outcome)})`);
  t.notOk(lowlevel.isInRepair(tcp.fd), 'the socket was not touched');
});

t.test('refuses a socket of another network namespace', async (t) => {
  const ns = createNetns('tcprh');
  t.teardown(() => ns.remove());
  const dir = socketDir(t, 0);
  const socket = path.join(dir, 'helper.sock');
  await startHelper(t, { ns: ns.name, socket, wrap: ROOT_FULL, args: ['--allow-uid', '0'] });
  const sock = native.unixConnect(socket, 2000);
  t.teardown(() => native.close(sock));
  const tcp = await tcpSocket(); // created in this (the root) namespace
  t.teardown(tcp.close);
  t.equal(ask(sock, request(1, 1), [tcp.fd]), await E('EXDEV'), 'EXDEV: its capability must not reach into another namespace');
  t.notOk(lowlevel.isInRepair(tcp.fd));
});
