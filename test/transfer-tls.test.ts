import t from 'tap';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { connectControl, listenControl, encodeFrame, PROTOCOL_VERSION, type ControlServer, type Message } from 'tcp-repair/transfer';

const HOST = '127.0.0.1';

async function pair(t: Tap.Test, serverOptions: object = {}, clientOptions: object = {}) {
  const key = randomBytes(32);
  const server = await listenControl({ host: HOST, key, ...serverOptions });
  t.teardown(() => server.close());
  const [client, accepted] = await Promise.all([connectControl({ host: HOST, port: server.port, key, ...clientOptions }), server.accept(5000)]);
  t.teardown(() => { client.destroy(); accepted.destroy(); });
  return { key, server, client, accepted };
}

// tap's Test type without importing tap's internals.
declare namespace Tap { type Test = Parameters<Parameters<typeof t.test>[1]>[0]; }

t.test('a two-phase migration conversation round-trips over TLS-PSK', async (t) => {
  const { client: sender, accepted: receiver } = await pair(t);
  const count = 200;
  const image = randomBytes(256 * 1024);
  const sending = (async () => {
    await sender.send({ type: 'hello', version: PROTOCOL_VERSION, count });
    for (let id = 0; id < count; id++) await sender.send({ type: 'image', id, meta: Buffer.from(`{"id":${id}}`), image: id === 0 ? image : Buffer.alloc(100, id) });
  })();
  t.same(await receiver.expect('hello'), { type: 'hello', version: PROTOCOL_VERSION, count });
  await receiver.send({ type: 'hello', version: PROTOCOL_VERSION, count: 0 });
  const received: number[] = [];
  for (let id = 0; id < count; id++) {
    const message = await receiver.expect('image');
    received.push(message.id);
    if (id === 0) t.ok(Buffer.from(message.image).equals(image), 'a 256 KiB image arrives intact');
    await receiver.send(id === 13 ? { type: 'failed', id, reason: 'bind EADDRINUSE' } : { type: 'restored', id });
  }
  await sending;
  t.same(received, Array.from({ length: count }, (_, id) => id), 'every image, in order');
  t.same(await sender.expect('hello'), { type: 'hello', version: PROTOCOL_VERSION, count: 0 });
  const answers: Message[] = [];
  for (let id = 0; id < count; id++) answers.push(await sender.receive());
  t.equal(answers.filter((m) => m.type === 'restored').length, count - 1);
  t.same(answers[13], { type: 'failed', id: 13, reason: 'bind EADDRINUSE' });
  await sender.send({ type: 'commit', ids: answers.flatMap((m) => (m.type === 'restored' ? [m.id] : [])) });
  await sender.send({ type: 'abort', ids: [13], reason: 'not restored' });
  await sender.send({ type: 'done' });
  t.equal((await receiver.expect('commit')).ids.length, count - 1);
  t.same(await receiver.expect('abort'), { type: 'abort', ids: [13], reason: 'not restored' });
  t.same(await receiver.expect('done'), { type: 'done' });
  await sender.close();
  await t.rejects(receiver.receive(1000), { code: 'ERR_CHANNEL_CLOSED' }, 'a clean close is reported as closed');
});

t.test('a wrong key or identity fails the handshake on both ends', async (t) => {
  const server = await listenControl({ host: HOST, key: randomBytes(32) });
  t.teardown(() => server.close());
  await t.rejects(connectControl({ host: HOST, port: server.port, key: randomBytes(32) }), { code: 'ERR_CHANNEL_SOCKET', message: /handshake .* failed/ });
  await t.rejects(connectControl({ host: HOST, port: server.port, key: randomBytes(32), identity: 'someone-else' }), { code: 'ERR_CHANNEL_SOCKET' });
  await t.rejects(server.accept(300), { code: 'ERR_CHANNEL_TIMEOUT' }, 'nothing was accepted');
  t.equal(server.refused.length, 2, 'both attempts were refused by the server');
  t.throws(() => connectControl({ host: HOST, port: server.port, key: randomBytes(16) }), RangeError, 'short keys are refused up front');
});

t.test('a plain-TCP peer sending garbage never gets a channel', async (t) => {
  const server: ControlServer = await listenControl({ host: HOST, key: randomBytes(32), handshakeTimeoutMs: 500 });
  t.teardown(() => server.close());
  const socket = net.connect(server.port, HOST, () => socket.write(encodeFrame(1, Buffer.from('TCPR-not-tls'))));
  socket.on('error', () => {});
  await t.rejects(server.accept(1000), { code: 'ERR_CHANNEL_TIMEOUT' });
  socket.destroy();
  t.ok(server.refused.length >= 1, `refused: ${server.refused.map((e) => e.message.slice(0, 60)).join('; ')}`);
});

t.test('the peer dying mid-frame is an error on the survivor, not a hang', async (t) => {
  const { client, accepted } = await pair(t);
  const started = performance.now();
  const waiting = accepted.receive(5000);
  // A frame header promising 1000 bytes, 10 of them, then the sender dies (no clean end).
  const socket = (client as unknown as { socket: import('node:tls').TLSSocket }).socket;
  socket.write(Buffer.concat([Buffer.from([0, 0, 3, 0xe8, 2]), Buffer.alloc(10)]), () => setTimeout(() => socket.destroy(), 20));
  await t.rejects(waiting, { code: /ERR_CHANNEL_CLOSED|ERR_FRAME_TRUNCATED/ });
  t.ok(performance.now() - started < 2000, 'reported at once');
});

t.test('a peer that stalls is a timeout within the bound', async (t) => {
  const { accepted } = await pair(t);
  const started = performance.now();
  await t.rejects(accepted.receive(200), { code: 'ERR_CHANNEL_TIMEOUT', message: /within 200 ms/ });
  t.ok(performance.now() - started < 1000);
  await t.rejects(accepted.send({ type: 'done' }), { code: 'ERR_CHANNEL_TIMEOUT' }, 'the channel stays failed');
});

t.test('an oversized frame from the peer fails the channel', async (t) => {
  const { client, accepted } = await pair(t, { maxFrameSize: 1024 }, {});
  await client.send({ type: 'image', id: 1, meta: new Uint8Array(0), image: Buffer.alloc(4096) });
  await t.rejects(accepted.receive(2000), { code: 'ERR_FRAME_TOO_LARGE' });
  await t.rejects(client.receive(2000), { code: /ERR_CHANNEL_CLOSED|ERR_CHANNEL_SOCKET/ }, 'the sender learns the channel is gone');
});
