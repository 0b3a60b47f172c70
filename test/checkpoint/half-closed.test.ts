/**
 * Half-closed connections. CLOSE_WAIT (the peer sent FIN, we may still write) moves; the states
 * where our side sent FIN (FIN_WAIT1, FIN_WAIT2, LAST_ACK, CLOSING) are refused with
 * ERR_STATE_UNSUPPORTED, and the refusal leaves nothing frozen: repair off, filter off, reading
 * and writing as before.
 */
import t from 'tap';
import net from 'node:net';
import { checkpoint, restore, encodeImage, decodeImage, lowlevel, socketFd, SocketStateError, TcpState } from 'tcp-repair';
import { Collector, connectedPair, pattern, sleep, until } from '../helpers/streams.js';

const stateOf = (s: net.Socket) => lowlevel.tcpStateName(lowlevel.tcpInfo(socketFd(s)).state);

t.test('CLOSE_WAIT: restored server reads the rest, then end, and can still write', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  srv.pause();
  // Small enough to fit the server's window, so the FIN arrives while the server does not read.
  const last = pattern(120_000, 7);
  const atClient = new Collector(client);
  client.end(last);
  await until(() => stateOf(srv) === 'CLOSE_WAIT', 5000, 'CLOSE_WAIT');
  await sleep(20);
  const image = decodeImage(encodeImage(await checkpoint(srv)));
  t.equal(image.state, 'CLOSE_WAIT');
  t.equal(image.recvQueue.length, last.length, 'every unread byte is in the image');
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  const atServer = new Collector(restored);
  await atServer.waitEnd(5000);
  t.ok(atServer.bytes().equals(last), 'restored server read the remaining bytes, in order, before end');
  // The peer's FIN is replayed locally with shutdown(SHUT_RD): the kernel keeps the restored
  // socket ESTABLISHED with its receive side shut (no raw-socket FIN injection as CRIU does).
  t.equal(stateOf(restored), 'ESTABLISHED', 'restored kernel state: ESTABLISHED, receive side shut');
  const reply = pattern(200_000, 8);
  restored.end(reply);
  await atClient.waitEnd(5000);
  t.ok(atClient.bytes().equals(reply), 'client received what the restored server wrote, then end');
  t.same(atClient.errors, []);
});

/** Checks the refused socket is not frozen: repair off, not corked, and bytes still flow in. */
async function assertNotFrozen(t: Tap.Test, srv: net.Socket, sendToSrv?: () => void, expected?: Buffer) {
  t.equal(lowlevel.isInRepair(socketFd(srv)), false, 'repair mode is off');
  t.equal(srv.writableCorked, 0, 'socket is not corked');
  if (sendToSrv && expected) {
    const got = new Collector(srv);
    sendToSrv();
    await got.waitFor(expected.length, 5000);
    t.ok(got.bytes().equals(expected), 'bytes still reach the refused socket (no filter, reading)');
  }
}

async function expectRefused(t: Tap.Test, srv: net.Socket, state: string) {
  const error = await checkpoint(srv).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(error instanceof SocketStateError, `${state}: SocketStateError`);
  t.equal((error as SocketStateError).code, 'ERR_STATE_UNSUPPORTED', `${state} refused with ERR_STATE_UNSUPPORTED`);
}

t.test('Node-level end() (FIN sent): refused before anything is frozen', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  srv.end();
  await until(() => stateOf(srv) === 'FIN_WAIT2', 5000, 'FIN_WAIT2');
  await expectRefused(t, srv, 'FIN_WAIT2 (after end())');
  const data = pattern(50_000, 9);
  await assertNotFrozen(t, srv, () => client.write(data), data);
});

t.test('FIN_WAIT2 behind Node\'s back (shutdown on the fd): refused after the freeze, thawed', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  lowlevel.shutdown(socketFd(srv), 'write');
  await until(() => stateOf(srv) === 'FIN_WAIT2', 5000, 'FIN_WAIT2');
  await expectRefused(t, srv, 'FIN_WAIT2');
  const data = pattern(50_000, 10);
  await assertNotFrozen(t, srv, () => client.write(data), data);
});

t.test('FIN_WAIT1 (FIN not acknowledged): refused, thawed', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  lowlevel.attachFreezeFilter(socketFd(client));
  lowlevel.shutdown(socketFd(srv), 'write');
  await until(() => stateOf(srv) === 'FIN_WAIT1', 5000, 'FIN_WAIT1');
  await expectRefused(t, srv, 'FIN_WAIT1');
  lowlevel.detachFreezeFilter(socketFd(client));
  const data = pattern(50_000, 11);
  await assertNotFrozen(t, srv, () => client.write(data), data);
  await until(() => stateOf(srv) === 'FIN_WAIT2', 5000, 'the FIN is eventually acknowledged');
});

t.test('LAST_ACK: refused, then the connection closes normally', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const atClient = new Collector(client);
  client.end();
  await until(() => stateOf(srv) === 'CLOSE_WAIT', 5000, 'CLOSE_WAIT');
  lowlevel.attachFreezeFilter(socketFd(client));
  lowlevel.shutdown(socketFd(srv), 'write');
  await until(() => stateOf(srv) === 'LAST_ACK', 5000, 'LAST_ACK');
  await expectRefused(t, srv, 'LAST_ACK');
  await assertNotFrozen(t, srv);
  lowlevel.detachFreezeFilter(socketFd(client));
  await atClient.waitEnd(5000);
  await until(() => lowlevel.tcpInfo(socketFd(srv)).state === TcpState.CLOSE, 5000, 'server CLOSE');
  t.same(atClient.errors, [], 'client closed without error');
});

t.test('CLOSING (simultaneous close): refused, then the connection closes normally', async (t) => {
  const pair = await connectedPair({ allowHalfOpen: true, clientAllowHalfOpen: true });
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const atClient = new Collector(client);
  lowlevel.attachFreezeFilter(socketFd(client));
  lowlevel.shutdown(socketFd(srv), 'write');
  await until(() => stateOf(srv) === 'FIN_WAIT1', 5000, 'FIN_WAIT1');
  lowlevel.shutdown(socketFd(client), 'write');
  await until(() => stateOf(srv) === 'CLOSING', 5000, 'CLOSING');
  await expectRefused(t, srv, 'CLOSING');
  await assertNotFrozen(t, srv);
  lowlevel.detachFreezeFilter(socketFd(client));
  await until(() => lowlevel.tcpInfo(socketFd(srv)).state === TcpState.TIME_WAIT || lowlevel.tcpInfo(socketFd(srv)).state === TcpState.CLOSE, 5000, 'server TIME_WAIT');
  t.same(atClient.errors, [], 'client saw no error');
});
