import t from 'tap';
import { decodeMessage, encodeFrame, encodeMessage, FrameDecoder, FrameError, jsonMeta, parseJsonMeta, type Message } from 'tcp-repair/transfer';

function frameOf(message: Message): Buffer {
  const { type, parts } = encodeMessage(message);
  return encodeFrame(type, Buffer.concat(parts));
}

const samples: Message[] = [
  { type: 'hello', version: 1, count: 100 },
  { type: 'image', id: 7, meta: jsonMeta({ sent: 10, received: 20 }), image: Buffer.alloc(3000, 0xab) },
  { type: 'image', id: 8, meta: new Uint8Array(0), image: new Uint8Array(0) },
  { type: 'restored', id: 7 },
  { type: 'failed', id: 8, reason: 'connect ENETUNREACH — ünïcode' },
  { type: 'commit', ids: [7, 9, 0xffffffff] },
  { type: 'commit', ids: 'all' },
  { type: 'abort', ids: [], reason: '' },
  { type: 'abort', ids: 'all', reason: 'address move failed' },
  { type: 'done' },
];

/** Normalises Uint8Array/Buffer views so t.same compares contents. */
function plain(message: Message): unknown {
  return JSON.parse(JSON.stringify(message, (_key, value) => (value instanceof Uint8Array || value?.type === 'Buffer' ? Buffer.from(value.data ?? value).toString('hex') : value)));
}

t.test('every message survives encode, any chunking, decode', async (t) => {
  const stream = Buffer.concat(Array.from({ length: 50 }, () => samples.map(frameOf)).flat());
  for (const chunkSize of [1, 3, 5, 64, 4096, stream.length]) {
    const decoder = new FrameDecoder();
    const decoded: Message[] = [];
    for (let offset = 0; offset < stream.length; offset += chunkSize) {
      for (const frame of decoder.push(stream.subarray(offset, offset + chunkSize))) decoded.push(decodeMessage(frame));
    }
    decoder.end();
    t.equal(decoded.length, samples.length * 50, `chunks of ${chunkSize}: all frames`);
    t.same(decoded.slice(0, samples.length).map(plain), samples.map(plain), `chunks of ${chunkSize}: same contents`);
  }
  const image = samples[1] as Extract<Message, { type: 'image' }>;
  t.same(parseJsonMeta(image.meta), { sent: 10, received: 20 });
});

t.test('an oversized frame is refused from its header, before any payload arrives', async (t) => {
  const decoder = new FrameDecoder(1024);
  const header = Buffer.from([0xff, 0xff, 0xff, 0xff, 2]); // claims 4 GiB
  t.throws(() => decoder.push(header), { name: 'FrameError', code: 'ERR_FRAME_TOO_LARGE', message: /4294967295-byte frame; the maximum is 1024/ });
  t.throws(() => decoder.push(Buffer.alloc(1)), { code: 'ERR_FRAME_TOO_LARGE' }, 'the decoder stays failed');
  t.throws(() => encodeFrame(2, Buffer.alloc(2000), 1024), { code: 'ERR_FRAME_TOO_LARGE' }, 'the sender refuses too');
});

t.test('a stream that stops inside a frame is truncated, not silently short', async (t) => {
  const frame = frameOf(samples[1]!);
  const decoder = new FrameDecoder();
  t.same(decoder.push(frame.subarray(0, frame.length - 1)), []);
  t.equal(decoder.pendingBytes, frame.length - 1);
  t.throws(() => decoder.end(), { code: 'ERR_FRAME_TRUNCATED', message: /ended inside a frame/ });
  const headerOnly = new FrameDecoder();
  headerOnly.push(frame.subarray(0, 3));
  t.throws(() => headerOnly.end(), { code: 'ERR_FRAME_TRUNCATED' }, 'even inside the header');
});

t.test('garbage and malformed payloads are refused with the reason', async (t) => {
  const decode = (type: number, payload: number[] | Buffer) => () => decodeMessage({ type, payload: Buffer.from(payload) });
  t.throws(decode(99, []), { code: 'ERR_FRAME_UNKNOWN_TYPE', message: /unknown message type 99/ });
  t.throws(decode(1, Buffer.from('GET / HTTP/1.1')), { code: 'ERR_FRAME_MALFORMED', message: /bad magic .*not a tcp-repair peer/ });
  t.throws(decode(1, [0x54, 0x43, 0x50, 0x52, 0, 1]), { code: 'ERR_FRAME_MALFORMED', message: /too short for count/ });
  t.throws(decode(3, [0, 0, 0, 1, 9]), { code: 'ERR_FRAME_MALFORMED', message: /1 unexpected trailing bytes/ });
  t.throws(decode(2, [0, 0, 0, 1, 0, 0, 1, 0]), { code: 'ERR_FRAME_MALFORMED', message: /too short for meta/ }, 'meta length past the end');
  t.throws(decode(5, [0, 0, 0, 0, 3, 0, 0, 0, 1]), { code: 'ERR_FRAME_MALFORMED', message: /too short for image id/ }, 'id count past the end');
  t.throws(decode(5, [2, 0, 0, 0, 0]), { code: 'ERR_FRAME_MALFORMED', message: /selection flag 2/ });
  t.throws(decode(4, [0, 0, 0, 1, 0xff, 0xfe]), { code: 'ERR_FRAME_MALFORMED', message: /not valid UTF-8/ });
  t.throws(decode(7, [0]), { code: 'ERR_FRAME_MALFORMED' }, 'done carries nothing');
  t.throws(() => parseJsonMeta(Buffer.from('{')), { code: 'ERR_FRAME_MALFORMED' });
  t.ok(new FrameError('ERR_FRAME_MALFORMED', 'x') instanceof Error);
});
