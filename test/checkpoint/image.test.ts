/**
 * The image format: round trip, and every malformed input (truncated, bit-flipped, foreign,
 * wrong version, lying header, bad fields) raises an ImageError with the right code, never
 * another exception type.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { checkpoint, resume, encodeImage, decodeImage, validateImage, ImageError, IMAGE_VERSION, type SocketImage, type ImageErrorCode } from 'tcp-repair';
import { connectedPair, pattern } from '../helpers/streams.js';

const MAGIC = Buffer.from('TCPRIMG\n', 'latin1');

/** A real image (checkpoint then resume), with patterned queues of chosen sizes. */
async function realImage(t: Tap.Test): Promise<SocketImage> {
  const pair = await connectedPair({ listen: '::1' });
  t.teardown(() => pair.close());
  const image = await checkpoint(pair.srv);
  resume(image);
  return { ...image, recvQueue: pattern(1000, 1), sentUnacked: pattern(2000, 2), unsent: pattern(3000, 3) };
}

/** Builds raw image bytes from a header object and payload, with a valid checksum. */
function raw(header: unknown, payload: Buffer = Buffer.alloc(0), opts: { version?: number; headerLength?: number; headerText?: string } = {}): Buffer {
  const h = Buffer.from(opts.headerText ?? JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(16);
  MAGIC.copy(prefix);
  prefix.writeUInt16BE(opts.version ?? IMAGE_VERSION, 8);
  prefix.writeUInt32BE(opts.headerLength ?? h.length, 12);
  const body = Buffer.concat([prefix, h, payload]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

function headerOf(image: SocketImage): Record<string, unknown> {
  const { recvQueue, sentUnacked, unsent, ...rest } = image;
  return { ...rest, lengths: { recvQueue: recvQueue.length, sentUnacked: sentUnacked.length, unsent: unsent.length } };
}
const payloadOf = (i: SocketImage) => Buffer.concat([i.recvQueue, i.sentUnacked, i.unsent]);

/** The code of the ImageError `fn` throws; fails the test on success or another error type. */
function codeOf(fn: () => unknown): ImageErrorCode | 'NO ERROR' | 'OTHER' {
  try {
    fn();
    return 'NO ERROR';
  } catch (e) {
    if (e instanceof ImageError) return e.code;
    return 'OTHER';
  }
}

t.test('round trip', async (t) => {
  const image = await realImage(t);
  const bytes = encodeImage(image);
  t.ok(bytes.subarray(0, 8).equals(MAGIC), 'starts with the magic');
  t.equal(bytes.readUInt16BE(8), IMAGE_VERSION);
  const back = decodeImage(bytes);
  for (const k of ['recvQueue', 'sentUnacked', 'unsent'] as const) t.ok(back[k].equals(image[k]), `${k} intact`);
  t.same(headerOf(back), headerOf(image), 'every header field intact');
  t.ok(encodeImage(back).equals(bytes), 'encode(decode(x)) == x');
  t.doesNotThrow(() => decodeImage(new Uint8Array(bytes)), 'accepts a plain Uint8Array');
  // Unknown header fields are ignored (forward compatible within one version).
  t.doesNotThrow(() => decodeImage(raw({ ...headerOf(image), futureField: { x: 1 } }, payloadOf(image))), 'unknown fields ignored');
});

t.test('truncated at every length', async (t) => {
  const bytes = encodeImage(await realImage(t));
  const seen = new Map<string, number>();
  for (let n = 0; n < bytes.length; n += n < 2048 ? 1 : 97) {
    const code = codeOf(() => decodeImage(bytes.subarray(0, n)));
    seen.set(code, (seen.get(code) ?? 0) + 1);
    if (code !== 'ERR_IMAGE_TRUNCATED' && code !== 'ERR_IMAGE_CHECKSUM') {
      t.fail(`length ${n}: ${code}`);
      break;
    }
  }
  t.same([...seen.keys()].sort(), ['ERR_IMAGE_CHECKSUM', 'ERR_IMAGE_TRUNCATED'], `codes: ${JSON.stringify(Object.fromEntries(seen))}`);
});

t.test('bit flips anywhere', async (t) => {
  const bytes = encodeImage(await realImage(t));
  const expected = (pos: number): ImageErrorCode[] => {
    if (pos < 8) return ['ERR_IMAGE_FOREIGN'];
    if (pos < 10) return ['ERR_IMAGE_VERSION'];
    if (pos >= 12 && pos < 16) return ['ERR_IMAGE_TRUNCATED', 'ERR_IMAGE_CHECKSUM'];
    return ['ERR_IMAGE_CHECKSUM'];
  };
  const positions = [...Array(16).keys(), ...Array.from({ length: 3000 }, () => Math.floor(Math.random() * bytes.length))];
  let bad = 0;
  for (const pos of positions) {
    const copy = Buffer.from(bytes);
    copy[pos]! ^= 1 << Math.floor(Math.random() * 8);
    const code = codeOf(() => decodeImage(copy));
    if (!(expected(pos) as string[]).includes(code)) {
      bad++;
      if (bad < 5) t.fail(`flip at ${pos}: ${code}, wanted ${expected(pos).join('|')}`);
    }
  }
  t.equal(bad, 0, `${positions.length} flips, each an ImageError with the expected code`);
});

t.test('foreign bytes', async (t) => {
  t.equal(codeOf(() => decodeImage(Buffer.from('GET / HTTP/1.1\r\n\r\n'))), 'ERR_IMAGE_FOREIGN');
  t.equal(codeOf(() => decodeImage(Buffer.from('{"version":1}'))), 'ERR_IMAGE_FOREIGN');
  t.equal(codeOf(() => decodeImage(Buffer.from('TCPR'))), 'ERR_IMAGE_TRUNCATED', 'a prefix of the magic is a truncation');
  t.equal(codeOf(() => decodeImage('TCPRIMG\n' as unknown as Buffer)), 'ERR_IMAGE_FIELD', 'a string is not an image');
  t.equal(codeOf(() => decodeImage(null as unknown as Buffer)), 'ERR_IMAGE_FIELD');
  let bad = 0;
  for (let i = 0; i < 500; i++) {
    const junk = randomBytes(Math.floor(Math.random() * 300));
    if (codeOf(() => decodeImage(junk)) !== 'ERR_IMAGE_FOREIGN' && !MAGIC.subarray(0, junk.length).equals(junk.subarray(0, 8))) bad++;
  }
  t.equal(bad, 0, 'random junk is foreign');
});

t.test('wrong version', async (t) => {
  const image = await realImage(t);
  for (const v of [0, IMAGE_VERSION + 1, 0xffff]) {
    t.equal(codeOf(() => decodeImage(raw(headerOf(image), payloadOf(image), { version: v }))), 'ERR_IMAGE_VERSION', `version ${v}`);
  }
  t.equal(codeOf(() => validateImage({ ...image, version: 2 })), 'ERR_IMAGE_FIELD', 'validateImage refuses another version');
});

t.test('header lying about lengths', async (t) => {
  const image = await realImage(t);
  const h = headerOf(image);
  const p = payloadOf(image);
  const L = h.lengths as { recvQueue: number; sentUnacked: number; unsent: number };
  const cases: Array<[string, Buffer, ImageErrorCode]> = [
    ['lengths sum too small', raw({ ...h, lengths: { ...L, unsent: L.unsent - 1 } }, p), 'ERR_IMAGE_LENGTH'],
    ['lengths sum too large', raw({ ...h, lengths: { ...L, recvQueue: L.recvQueue + 1 } }, p), 'ERR_IMAGE_LENGTH'],
    ['huge length', raw({ ...h, lengths: { ...L, sentUnacked: 2 ** 40 } }, p), 'ERR_IMAGE_LENGTH'],
    ['negative length', raw({ ...h, lengths: { ...L, recvQueue: -1 } }, p), 'ERR_IMAGE_FIELD'],
    ['fractional length', raw({ ...h, lengths: { ...L, recvQueue: 1.5 } }, p), 'ERR_IMAGE_FIELD'],
    ['string length', raw({ ...h, lengths: { ...L, recvQueue: '1000' } }, p), 'ERR_IMAGE_FIELD'],
    ['no lengths', raw({ ...h, lengths: undefined }, p), 'ERR_IMAGE_HEADER'],
    ['header is null', raw(null, p), 'ERR_IMAGE_HEADER'],
    ['header is an array', raw([1, 2], p), 'ERR_IMAGE_HEADER'],
    ['header not JSON', raw(null, p, { headerText: '{"version":1,' }), 'ERR_IMAGE_HEADER'],
    ['header length beyond the image', raw(h, p, { headerLength: 0x7fffffff }), 'ERR_IMAGE_TRUNCATED'],
    ['header length over the cap', raw(h, Buffer.alloc(70_000), { headerLength: 65 * 1024 }), 'ERR_IMAGE_TRUNCATED'],
    ['header length too short', raw(h, p, { headerLength: 10 }), 'ERR_IMAGE_HEADER'],
  ];
  for (const [what, bytes, code] of cases) t.equal(codeOf(() => decodeImage(bytes)), code, what);
});

t.test('fields out of range (valid checksum)', async (t) => {
  const image = await realImage(t);
  const h = headerOf(image);
  const p = payloadOf(image);
  const set = (path: string, value: unknown) => {
    const copy = JSON.parse(JSON.stringify(h));
    const keys = path.split('.');
    let o = copy;
    for (const k of keys.slice(0, -1)) o = o[k];
    if (value === '<delete>') delete o[keys.at(-1)!];
    else o[keys.at(-1)!] = value;
    return raw(copy, p);
  };
  const fields = ['family', 'local', 'local.address', 'local.port', 'peer.port', 'state', 'recvSeq', 'sendSeq', 'options', 'options.mss', 'options.sack', 'options.sndWscale', 'timestamp', 'window', 'window.rcvWnd', 'socketOptions', 'socketOptions.noDelay', 'socketOptions.ttl', 'socketOptions.congestion', 'node', 'node.allowHalfOpen', 'node.timeout', 'node.encoding', 'takenAt'];
  const values: unknown[] = ['<delete>', 'x', -2, 2 ** 32, 1.5, {}, [], true];
  let n = 0;
  const unexpected: string[] = [];
  for (const f of fields) {
    for (const v of values) {
      const code = codeOf(() => decodeImage(set(f, v)));
      n++;
      if (code === 'OTHER') unexpected.push(`${f}=${JSON.stringify(v)}: non-ImageError`);
      else if (code === 'NO ERROR' && !acceptable(f, v)) unexpected.push(`${f}=${JSON.stringify(v)}: accepted`);
    }
  }
  t.same(unexpected, [], `${n} mutated headers: all refused with ImageError (or harmless)`);
  t.equal(codeOf(() => decodeImage(set('state', 'FIN_WAIT2'))), 'ERR_IMAGE_FIELD', 'unsupported state');
  t.equal(codeOf(() => decodeImage(set('local.address', '10.0.0.1.5'))), 'ERR_IMAGE_FIELD', 'bad address');
  t.equal(codeOf(() => encodeImage({ ...image, recvQueue: 'abc' as unknown as Buffer })), 'ERR_IMAGE_FIELD', 'encode validates too');
});

/** Mutations a reader may legitimately accept: the value is still in range for that field. */
function acceptable(field: string, value: unknown): boolean {
  const booleans = ['options.sack', 'socketOptions.noDelay', 'node.allowHalfOpen'];
  if (booleans.includes(field)) return typeof value === 'boolean';
  if (field === 'takenAt') return typeof value === 'number'; // informational wall-clock time
  if (field === 'socketOptions.congestion') return value === 'x'; // a valid-looking name
  return false;
}
