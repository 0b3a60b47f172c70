// The transfer framing under property-based and mutation fuzzing: FrameDecoder over arbitrary
// chunkings, random and mutated streams (bit flips, truncation, replayed and reordered frames),
// decodeImageFrame and the message parsers on arbitrary payloads. Never a crash (only
// FrameError), never a hang, and a frame is refused at its header, before its body is buffered,
// when it declares more than its type allows.
import t from 'tap';
import fc from 'fast-check';
import {
  FrameDecoder, FrameError, FrameType, encodeFrame, encodeImageFrame, decodeImageFrame,
  MAX_CONTROL_FRAME_BYTES, MAX_IMAGE_FRAME_BYTES, type Frame, type FrameTypeName,
} from '../../dist/esm/migrate/frames.js';
import { parseActivated, parseFailed, parseHello, parseIdList, parsePrepared, parseRestored, parseStatus, parseStatusReply } from '../../dist/esm/migrate/protocol.js';
import { decodeImage, ImageError } from 'tcp-repair';
import { HANG_MS, mutated, realImages, runs } from './corpus.js';

const TYPES = Object.keys(FrameType) as FrameTypeName[];
const corpus = await realImages();
let cases = 0;
let slowest = 0;

const frameArb = fc.tuple(fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 512 })).map(([type, payload]) => ({ type, payload: Buffer.from(payload) }));

/** Splits `bytes` at the given cut points (any chunking a TCP/TLS stream could produce). */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

/** The contract: frames or a FrameError, promptly; every frame within its type's ceiling. */
function feed(chunks: Buffer[]): { frames: Frame[]; error?: FrameError; pending: number } {
  cases++;
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let error: FrameError | undefined;
  const started = performance.now();
  try {
    for (const chunk of chunks) frames.push(...decoder.push(chunk));
  } catch (e) {
    if (!(e instanceof FrameError)) throw new Error(`not a FrameError: ${(e as Error)?.stack ?? String(e)}`);
    error = e;
  }
  const ms = performance.now() - started;
  slowest = Math.max(slowest, ms);
  if (ms > HANG_MS) throw new Error(`decoder took ${ms.toFixed(0)} ms`);
  for (const f of frames) {
    if (!TYPES.includes(f.type)) throw new Error(`frame of unknown type ${f.type}`);
    if (f.payload.length > (f.type === 'IMAGE' ? MAX_IMAGE_FRAME_BYTES : MAX_CONTROL_FRAME_BYTES)) throw new Error('frame over its ceiling');
  }
  return { frames, error, pending: decoder.pending() };
}

t.test('valid frames survive any chunking, in order', async (t) => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.payload)));
      const out = feed(chunked(stream, cuts));
      return out.error === undefined && out.pending === 0 && out.frames.length === frames.length &&
        out.frames.every((f, i) => f.type === frames[i]!.type && f.payload.equals(frames[i]!.payload));
    }),
    { numRuns: runs(2000) },
  );
  t.pass('decoded exactly');
});

t.test('random byte streams', async (t) => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 256 }), { maxLength: 8 }), (chunks) => { feed(chunks.map((c) => Buffer.from(c))); }), { numRuns: runs(3000) });
  t.pass('only FrameError');
});

t.test('mutated streams: flips, truncation, replayed and reordered frames', async (t) => {
  let truncated = 0;
  const streams = fc.array(frameArb, { minLength: 1, maxLength: 6 }).chain((frames) =>
    fc.tuple(
      fc.constant(frames),
      fc.oneof(
        fc.constant('as-is' as const),
        fc.constant('replay' as const),
        fc.constant('reorder' as const),
      ),
      fc.nat(),
    ),
  ).map(([frames, how, n]) => {
    const list = [...frames];
    const i = n % list.length;
    if (how === 'replay') list.splice(i, 0, list[i]!);
    if (how === 'reorder' && list.length > 1) [list[0], list[i]] = [list[i]!, list[0]!];
    return new Uint8Array(Buffer.concat(list.map((f) => encodeFrame(f.type, f.payload))));
  });
  fc.assert(
    fc.property(mutated(streams), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
      const out = feed(chunked(Buffer.from(bytes), cuts));
      if (!out.error && out.pending > 0) truncated++;
    }),
    { numRuns: runs(3000) },
  );
  t.ok(truncated > 0, `${truncated} truncated streams left bytes pending (the channel reports them as a cut frame)`);
});

t.test('a frame declaring more than its type allows is refused at the header', async (t) => {
  const before = process.memoryUsage().arrayBuffers;
  for (const [type, length] of [['IMAGE', MAX_IMAGE_FRAME_BYTES + 1], ['IMAGE', 0xffffffff], ['HELLO', MAX_CONTROL_FRAME_BYTES + 1], ['ACTIVATE', 2 ** 31]] as const) {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(length, 0);
    header.writeUInt8(FrameType[type], 4);
    t.throws(() => new FrameDecoder().push(header), { code: 'ERR_FRAME_TOO_LARGE' }, `${type} declaring ${length} bytes refused with only its 5 header bytes received`);
  }
  // Within the ceiling, the decoder holds only what arrived, never what was declared.
  const decoder = new FrameDecoder();
  const header = Buffer.alloc(5);
  header.writeUInt32BE(MAX_IMAGE_FRAME_BYTES, 0);
  header.writeUInt8(FrameType.IMAGE, 4);
  t.same(decoder.push(Buffer.concat([header, Buffer.alloc(1000)])), []);
  t.equal(decoder.pending(), 1005, 'pending = bytes received');
  const grown = process.memoryUsage().arrayBuffers - before;
  t.ok(grown < 16 * 1024 * 1024, `no allocation of the declared size (${(grown / 1024).toFixed(0)} KiB)`);
  // A smaller ceiling for an end that wants one.
  t.throws(() => new FrameDecoder({ maxImageBytes: 1024 }).push(Buffer.from([0, 0, 8, 0, FrameType.IMAGE])), { code: 'ERR_FRAME_TOO_LARGE' });
  t.throws(() => encodeImageFrame(1, null, Buffer.alloc(2048), { maxImageBytes: 1024 }), { code: 'ERR_FRAME_TOO_LARGE' }, 'the sender checks too');
  t.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0, 99])), { code: 'ERR_FRAME_TYPE' });
});

t.test('decodeImageFrame on arbitrary and mutated payloads', async (t) => {
  const check = (payload: Uint8Array) => {
    cases++;
    try {
      const { id, image } = decodeImageFrame({ type: 'IMAGE', payload: Buffer.from(payload) });
      if (!Number.isInteger(id) || !Buffer.isBuffer(image)) throw new Error('bad decode');
      try {
        decodeImage(image);
      } catch (e) {
        if (!(e instanceof ImageError)) throw e;
      }
    } catch (e) {
      if (!(e instanceof FrameError)) throw new Error(`not a FrameError: ${(e as Error)?.stack}`);
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), check), { numRuns: runs(2000) });
  const real = fc.tuple(fc.constantFrom(...corpus.slice(0, 1).concat(corpus.slice(2))), fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))))
    .map(([image, meta]) => new Uint8Array(encodeImageFrame(7, meta as never, image).subarray(5)));
  fc.assert(fc.property(mutated(real), check), { numRuns: runs(2000) });
  fc.assert(
    fc.property(fc.jsonValue(), (meta) => {
      const out = decodeImageFrame({ type: 'IMAGE', payload: encodeImageFrame(3, meta as never, corpus[0]!).subarray(5) });
      return JSON.stringify(out.meta) === JSON.stringify(meta) && out.image.equals(corpus[0]!);
    }),
    { numRuns: runs(1000) },
  );
  t.pass('only FrameError or ImageError; meta round-trips');
});

t.test('message parsers on arbitrary JSON and bytes', async (t) => {
  const parsers = [parseHello, parseIdList, parseRestored, parseFailed, parseActivated, parsePrepared, parseStatus, parseStatusReply];
  let accepted = 0;
  const check = (payload: Buffer) => {
    for (const parse of parsers) {
      cases++;
      try {
        const value = parse({ type: 'HELLO', payload }) as unknown as Record<string, unknown>;
        accepted++;
        // Whatever is accepted has the promised shape.
        if ('ids' in value && !(Array.isArray(value.ids) && value.ids.every((id) => Number.isInteger(id) && id >= 0))) throw new Error('bad ids accepted');
        if ('id' in value && !(Number.isInteger(value.id) && (value.id as number) >= 0)) throw new Error('bad id accepted');
        if ('reason' in value && typeof value.reason !== 'string') throw new Error('bad reason accepted');
      } catch (e) {
        if (!(e instanceof FrameError)) throw new Error(`${parse.name}: not a FrameError: ${(e as Error)?.stack}`);
      }
    }
  };
  const shaped = fc.oneof(
    fc.jsonValue(),
    fc.record({ version: fc.jsonValue(), count: fc.jsonValue() }),
    fc.record({ ids: fc.oneof(fc.array(fc.integer()), fc.jsonValue()), activateMs: fc.jsonValue() }),
    fc.record({ id: fc.oneof(fc.nat(), fc.jsonValue()), code: fc.jsonValue(), reason: fc.jsonValue(), restoreMs: fc.jsonValue() }),
  );
  fc.assert(fc.property(shaped, (v) => check(Buffer.from(JSON.stringify(v) ?? ''))), { numRuns: runs(2000) });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), (b) => check(Buffer.from(b))), { numRuns: runs(1000) });
  t.ok(accepted > 0, `${accepted} well-formed messages accepted`);
});

t.test('summary', async (t) => {
  t.comment(`framing fuzz: ${cases} cases, slowest ${slowest.toFixed(2)} ms`);
  t.ok(cases > runs(10000), `${cases} cases ran`);
});
