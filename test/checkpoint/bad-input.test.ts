/** Sockets that cannot be checkpointed are refused with a SocketStateError and a stable code. */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { checkpoint, SocketStateError } from 'tcp-repair';
import { connectedPair } from '../helpers/streams.js';

async function refusal(socket: unknown): Promise<SocketStateError | unknown> {
  try {
    await checkpoint(socket as net.Socket);
  } catch (e) {
    return e;
  }
  return null;
}

function isStateError(t: Tap.Test, e: unknown, code: string, what: string) {
  t.ok(e instanceof SocketStateError, `${what}: SocketStateError (got ${String(e)})`);
  t.equal((e as SocketStateError).code, code, `${what}: ${code}`);
}

t.test('destroyed socket', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  pair.srv.destroy();
  isStateError(t, await refusal(pair.srv), 'ERR_SOCKET_CLOSED', 'destroyed');
});

t.test('socket without fd (never connected)', async (t) => {
  isStateError(t, await refusal(new net.Socket()), 'ERR_NO_FD', 'unconnected');
});

t.test('socket still connecting', async (t) => {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const s = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => s.destroy());
  isStateError(t, await refusal(s), 'ERR_SOCKET_CONNECTING', 'connecting');
});

t.test('not a socket at all', async (t) => {
  for (const v of [null, undefined, {}, 42]) isStateError(t, await refusal(v), 'ERR_NOT_SOCKET', String(v));
});

t.test('a Unix domain socket is not TCP', async (t) => {
  const file = path.join(os.tmpdir(), `tcpr-ck-${process.pid}.sock`);
  const server = net.createServer().listen(file);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const s = net.connect(file);
  await once(s, 'connect');
  t.teardown(() => s.destroy());
  isStateError(t, await refusal(s), 'ERR_NOT_TCP', 'unix socket');
  t.equal(s.destroyed, false, 'the socket is untouched');
});
