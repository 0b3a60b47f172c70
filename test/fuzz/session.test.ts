// A real receiver (in this process, on loopback) fed random sessions over an authenticated
// channel: random sequences of frames (well-formed messages in the wrong order, replays, real
// images, malformed payloads, cut streams). The receiver must never throw out of its session,
// never hand out a connection that was not activated, and leave no socket behind.
import t from 'tap';
import tls from 'node:tls';
import net from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { createReceiver } from 'tcp-repair';
import { FrameDecoder, encodeFrame, encodeImageFrame, encodeJsonFrame, type FrameTypeName } from '../../dist/esm/migrate/frames.js';
import { PSK_CIPHERS } from '../../dist/esm/migrate/channel.js';
import { PROTOCOL_VERSION } from '../../dist/esm/migrate/protocol.js';
import { realImages, runs } from './corpus.js';

const KEY = 'session-fuzz-key-0123456789abcdef';
const corpus = (await realImages()).filter((b) => b.length < 64 * 1024);
const openFds = () => readdirSync('/proc/self/fd').length;

let handedOut = 0;
const sessionErrors = new Map<string, number>();
const receiver = createReceiver({ host: '127.0.0.1', port: 0, key: KEY, timeoutMs: 300 }, (socket) => {
  handedOut++;
  socket.destroy();
});
receiver.on('sessionError', (e: Error & { code?: string }) => sessionErrors.set(e.code ?? e.message, (sessionErrors.get(e.code ?? e.message) ?? 0) + 1));
await receiver.listen();
t.teardown(() => receiver.close());
const { port } = receiver.address();

const message = fc.oneof(
  fc.constant(encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: 3 })),
  fc.record({ version: fc.jsonValue(), count: fc.jsonValue() }).map((v) => encodeJsonFrame('HELLO', v)),
  fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: corpus.length - 1 })).map(([id, i]) => encodeImageFrame(id, { n: id }, corpus[i]!)),
  fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 300 })).map(([id, b]) => encodeImageFrame(id % 5, null, Buffer.from(b))),
  fc.constant(encodeJsonFrame('IMAGES_DONE', {})),
  fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 5 }).map((ids) => encodeJsonFrame('ACTIVATE', { ids })),
  fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 5 }).map((ids) => encodeJsonFrame('ABORT', { ids })),
  fc.constant(encodeJsonFrame('BYE', {})),
  fc.tuple(fc.constantFrom<FrameTypeName>('HELLO', 'ACTIVATE', 'ABORT', 'RESTORED', 'FAILED', 'ACTIVATED', 'PREPARED', 'STATUS', 'STATUS_REPLY'), fc.jsonValue()).map(([type, v]) => encodeJsonFrame(type, v)),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 40 }).map((b) => encodeFrame('HELLO', Buffer.from(b))),
);

/** A valid prefix most of the time, so later phases are reached, then anything. */
const session = fc.tuple(fc.boolean(), fc.array(message, { maxLength: 10 }), fc.boolean()).map(([hello, rest, cut]) => ({
  frames: hello ? [encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: 3 }), ...rest] : rest,
  cut,
}));

async function play(frames: Buffer[], cut: boolean): Promise<void> {
  const socket = tls.connect({ host: '127.0.0.1', port, pskCallback: () => ({ psk: Buffer.from(KEY), identity: 'tcp-repair' }), ciphers: PSK_CIPHERS, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
  socket.on('error', () => {});
  socket.on('data', () => {});
  await once(socket, 'secureConnect');
  // 'close' alone: the receiver may reset the connection mid-write, which is fine here.
  const closed = new Promise((resolve) => socket.once('close', resolve));
  for (const f of frames) socket.write(f);
  if (cut) socket.destroy();
  else socket.end();
  await closed;
}

t.test('random sessions against a real receiver', async (t) => {
  const fdsBefore = openFds();
  let sessions = 0;
  await fc.assert(
    fc.asyncProperty(session, async ({ frames, cut }) => {
      sessions++;
      await play(frames, cut);
    }),
    { numRuns: runs(150) },
  );
  // Sessions end on the receiver's side within its 300 ms timeout at most.
  await new Promise((r) => setTimeout(r, 800));
  t.ok(sessions >= runs(150), `${sessions} sessions played`);
  t.comment(`session outcomes: ${[...sessionErrors].map(([k, v]) => `${k} ${v}`).join(', ')}; handed out ${handedOut}`);
  t.ok(sessionErrors.size > 0, 'bad sessions were refused with errors');
  t.ok(openFds() <= fdsBefore + 2, `no socket left behind (${fdsBefore} fds before, ${openFds()} after)`);
});

t.test('an activated connection is handed out, a discarded one never', async (t) => {
  const before = handedOut;
  await play([encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: 1 }), encodeImageFrame(0, null, corpus[0]!), encodeJsonFrame('IMAGES_DONE', {}), encodeJsonFrame('ABORT', { ids: [0] }), encodeJsonFrame('BYE', {})], false);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(handedOut, before, 'aborted: not handed out');
  await play([encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: 1 }), encodeImageFrame(0, null, corpus[0]!), encodeJsonFrame('IMAGES_DONE', {}), encodeJsonFrame('ACTIVATE', { ids: [0] }), encodeJsonFrame('BYE', {})], false);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(handedOut, before + 1, 'activated: handed out');
});

/** Opens a channel, sends `frames`, and returns the first frame the receiver answers. */
async function ask(frames: Buffer[]): Promise<{ type: string; value: unknown }> {
  const socket = tls.connect({ host: '127.0.0.1', port, pskCallback: () => ({ psk: Buffer.from(KEY), identity: 'tcp-repair' }), ciphers: PSK_CIPHERS, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  const decoder = new FrameDecoder();
  const answer = new Promise<{ type: string; value: unknown }>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      const [frame] = decoder.push(chunk);
      if (frame) resolve({ type: frame.type, value: JSON.parse(frame.payload.toString('utf8')) });
    });
  });
  for (const f of frames) socket.write(f);
  const result = await answer;
  socket.destroy();
  return result;
}

t.test('STATUS: an activated session says so; a status query fences a session not activated, whose later ACTIVATE is refused', async (t) => {
  const before = handedOut;
  const errorsBefore = sessionErrors.get('ERR_FRAME_MESSAGE') ?? 0;
  // Session 'a1' activates its one connection.
  await play([encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: 1, session: 'a1' }), encodeImageFrame(0, null, corpus[0]!), encodeJsonFrame('IMAGES_DONE', {}), encodeJsonFrame('ACTIVATE', { ids: [0] }), encodeJsonFrame('BYE', {})], false);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(handedOut, before + 1, 'a1 handed out');
  t.same(await ask([encodeJsonFrame('STATUS', { session: 'a1' })]), { type: 'STATUS_REPLY', value: { activated: true, ids: [0] } }, 'a1: activated');
  // Session 'b2' restores, then a status query arrives before its ACTIVATE.
  const socket = tls.connect({ host: '127.0.0.1', port, pskCallback: () => ({ psk: Buffer.from(KEY), identity: 'tcp-repair' }), ciphers: PSK_CIPHERS, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
  socket.on('error', () => {});
  socket.on('data', () => {});
  await once(socket, 'secureConnect');
  const closed = new Promise((resolve) => socket.once('close', resolve));
  for (const f of [encodeJsonFrame('HELLO', { version: PROTOCOL_VERSION, count: 1, session: 'b2' }), encodeImageFrame(0, null, corpus[0]!), encodeJsonFrame('IMAGES_DONE', {})]) socket.write(f);
  await new Promise((r) => setTimeout(r, 100));
  t.same(await ask([encodeJsonFrame('STATUS', { session: 'b2' })]), { type: 'STATUS_REPLY', value: { activated: false, ids: [] } }, 'b2: not activated');
  socket.write(encodeJsonFrame('ACTIVATE', { ids: [0] }));
  socket.end(encodeJsonFrame('BYE', {}));
  await closed;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(handedOut, before + 1, 'b2 never handed out: its ACTIVATE came after the status query');
  t.equal(sessionErrors.get('ERR_FRAME_MESSAGE') ?? 0, errorsBefore + 1, 'b2 ended with a protocol error');
  t.same(await ask([encodeJsonFrame('STATUS', { session: 'c3' })]), { type: 'STATUS_REPLY', value: { activated: false, ids: [] } }, 'an unknown session: not activated');
});

t.test('no unexpected exception escaped', async (t) => {
  t.pass('the process is still running and tap saw no uncaught error');
  void net;
});
