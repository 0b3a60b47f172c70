// The source side when the receiver refuses, fails or dies: every connection resumes on the
// source and keeps carrying data both ways; nothing stays frozen.
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { createReceiver, migrate } from 'tcp-repair';
import { Channel, tlsServerOptions } from '../../dist/esm/migrate/channel.js';
import { decodeImageFrame, encodeJsonFrame } from '../../dist/esm/migrate/frames.js';
import { heldCount } from '../../dist/esm/source-holds.js';
import { scaled } from '../helpers/time-scale.js';

const KEY = 'a-test-key-of-at-least-16-bytes';

async function pairs(n: number) {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const list: Array<{ client: net.Socket; server: net.Socket }> = [];
  for (let i = 0; i < n; i++) {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(port, '127.0.0.1');
    list.push({ client, server: await accepted });
  }
  return { list, close: () => { for (const p of list) { p.client.destroy(); p.server.destroy(); } server.close(); } };
}

/** Both directions still work after the move failed: 256 KiB each way, sha256 compared. */
async function exchange(t: Tap.Test, a: net.Socket, b: net.Socket) {
  const one = randomBytes(256 * 1024);
  const two = randomBytes(256 * 1024);
  const read = (s: net.Socket, n: number) => new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const on = (c: Buffer) => { chunks.push(c); got += c.length; if (got >= n) { s.off('data', on); resolve(Buffer.concat(chunks)); } };
    s.on('data', on);
  });
  const atB = read(b, one.length);
  const atA = read(a, two.length);
  a.write(one);
  b.write(two);
  const [gotB, gotA] = await Promise.all([atB, atA]);
  const h = (x: Buffer) => createHash('sha256').update(x).digest('hex');
  t.equal(h(gotB), h(one), 'a -> b intact');
  t.equal(h(gotA), h(two), 'b -> a intact');
}

/** A fake receiver's first step: takes HELLO and answers PREPARED (readied nothing). */
async function helloPrepared(ch: Channel): Promise<void> {
  await ch.next(scaled(2000));
  ch.send(encodeJsonFrame('PREPARED', { prepared: 0, prepareMs: 0 }));
}

/** A receiver that speaks the protocol up to a point, then misbehaves. */
async function fakeReceiver(behaviour: (channel: Channel) => Promise<void>) {
  const server = tls.createServer(tlsServerOptions(Buffer.from(KEY), 'tcp-repair'), (socket) => {
    behaviour(new Channel(socket)).catch(() => socket.destroy());
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

async function expectRollback(t: Tap.Test, port: number, key: string, code?: RegExp) {
  const { list, close } = await pairs(3);
  t.teardown(close);
  const report = await migrate(list.map((p) => p.server), { to: { host: '127.0.0.1', port }, key, timeoutMs: scaled(2000), handover: async () => {} });
  t.ok(report.error, `migration failed: ${report.error?.message}`);
  if (code) t.match(report.error?.message ?? '', code);
  t.equal(report.moved.length, 0, 'nothing moved');
  t.equal(report.stayed.length, 3, 'every connection stayed');
  t.equal(heldCount(), 0, 'no socket left frozen');
  for (const p of list) {
    t.notOk(p.server.destroyed, 'source socket alive');
    await exchange(t, p.client, p.server);
  }
}

t.test('wrong key: the handshake fails, nothing is frozen, nothing restored', async (t) => {
  let restored = 0;
  const receiver = createReceiver({ host: '127.0.0.1', port: 0, key: 'the-right-key-0123456789' }, () => restored++);
  await receiver.listen();
  t.teardown(() => receiver.close());
  await expectRollback(t, receiver.address().port, 'a-wrong-key-0123456789ab');
  t.equal(restored, 0, 'receiver handed out no connection');
});

/** A fake receiver that answers every image with FAILED ('refused by test'). */
const refusingReceiver = () => fakeReceiver(async (ch) => {
  await helloPrepared(ch);
  for (;;) {
    const f = await ch.next(scaled(2000));
    if (f.type === 'IMAGE') ch.send(encodeJsonFrame('FAILED', { id: decodeImageFrame(f).id, code: 'ERR_TEST', reason: 'refused by test' }));
  }
});

t.test('receiver refuses every image: all resume on the source', async (t) => {
  const fake = await refusingReceiver();
  t.teardown(fake.close);
  await expectRollback(t, fake.port, KEY, /refused by test/);
});

t.test('receiver dies mid-transfer: all resume on the source', async (t) => {
  const fake = await fakeReceiver(async (ch) => {
    await helloPrepared(ch);
    await ch.next(scaled(2000)); // first IMAGE
    ch.socket.destroy();
  });
  t.teardown(fake.close);
  await expectRollback(t, fake.port, KEY);
});

t.test('receiver confirms restores then dies before activation: all resume', async (t) => {
  const fake = await fakeReceiver(async (ch) => {
    await helloPrepared(ch);
    for (;;) {
      const f = await ch.next(scaled(2000));
      if (f.type === 'IMAGE') ch.send(encodeJsonFrame('RESTORED', { id: decodeImageFrame(f).id, restoreMs: 0 }));
      if (f.type === 'ACTIVATE') { ch.socket.destroy(); return; }
    }
  });
  t.teardown(fake.close);
  const { list, close } = await pairs(2);
  t.teardown(close);
  // Without a handover the source cannot tell the activation happened: with a handback it rolls back.
  let handedBack = 0;
  const report = await migrate(list.map((p) => p.server), { to: { host: '127.0.0.1', port: fake.port }, key: KEY, timeoutMs: scaled(2000), handover: async () => {}, handback: async () => { handedBack++; } });
  t.ok(report.error, 'migration failed');
  t.equal(handedBack, 1, 'address handed back');
  t.equal(report.stayed.length, 2);
  for (const p of list) await exchange(t, p.client, p.server);
});

t.test('receiver silent: the source times out and resumes', async (t) => {
  const fake = await fakeReceiver(async (ch) => { await new Promise((r) => setTimeout(r, scaled(2500))); ch.close(); });
  t.teardown(fake.close);
  await expectRollback(t, fake.port, KEY, /within/);
});

t.test('no receiver listening: nothing frozen', async (t) => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  await expectRollback(t, port, KEY);
});

t.test('the control channel is TLS 1.3 with an ephemeral key exchange (forward secret)', async (t) => {
  const { connectChannel } = await import('../../dist/esm/migrate/channel.js');
  const receiver = createReceiver({ host: '127.0.0.1', port: 0, key: KEY }, () => {});
  await receiver.listen();
  t.teardown(() => receiver.close());
  const channel = await connectChannel('127.0.0.1', receiver.address().port, Buffer.from(KEY), 'tcp-repair', scaled(2000));
  t.equal(channel.socket.getProtocol(), 'TLSv1.3');
  t.equal(channel.socket.getEphemeralKeyInfo()?.type, 'ECDH');
  t.match(channel.socket.getCipher().name, /^TLS_(AES_128_GCM|CHACHA20_POLY1305)_SHA256$/);
  channel.socket.destroy();
});

t.test('connections the application reads with data handlers flow again after a rollback; one it paused stays paused', async (t) => {
  // migrate() pauses flowing sockets while it checkpoints (their traffic would run inside the
  // freeze); those that stay must deliver to the application's own handler again.
  const fake = await refusingReceiver();
  t.teardown(fake.close);
  const { list, close } = await pairs(2);
  t.teardown(close);
  const [flowing, pausedByApp] = list;
  const received: Buffer[] = [];
  flowing!.server.on('data', (chunk: Buffer) => received.push(chunk));
  pausedByApp!.server.on('data', () => {});
  pausedByApp!.server.pause();
  const report = await migrate(list.map((p) => p.server), { to: { host: '127.0.0.1', port: fake.port }, key: KEY, timeoutMs: scaled(2000), handover: async () => {} });
  t.match(report.error?.message ?? '', /refused by test/, 'the move failed');
  t.equal(report.stayed.length, 2, 'both stayed');
  t.equal(flowing!.server.readableFlowing, true, 'the flowing socket flows again');
  t.equal(pausedByApp!.server.readableFlowing, false, "the socket the application paused is still paused");
  const bytes = randomBytes(128 * 1024);
  flowing!.client.write(bytes);
  const deadline = Date.now() + scaled(5000);
  while (Buffer.concat(received).length < bytes.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const h = (x: Buffer) => createHash('sha256').update(x).digest('hex');
  t.equal(h(Buffer.concat(received)), h(bytes), "the application's own data handler got every byte sent after the rollback");
});
