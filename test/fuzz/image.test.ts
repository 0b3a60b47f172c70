// decodeImage under property-based and mutation fuzzing: random bytes, mutated real images
// (with and without a re-sealed checksum, so the parser behind the checksum is reached too),
// structurally mutated headers, and lying lengths. Never a crash (only ImageError), never a
// hang, and a declared size larger than the input is refused before anything is allocated.
import t from 'tap';
import fc from 'fast-check';
import { decodeImage, encodeImage, validateImage, ImageError, IMAGE_VERSION } from 'tcp-repair';
import { HANG_MS, mutated, realImages, reseal, runs, timed } from './corpus.js';

const corpus = await realImages();
const MAGIC = Buffer.from('TCPRIMG\n', 'latin1');
let cases = 0;
let decoded = 0;
let slowest = 0;

/** The contract: decodeImage returns a valid image or throws ImageError, promptly. */
function check(bytes: Uint8Array): boolean {
  cases++;
  let image;
  const ms = timed(() => {
    try {
      image = decodeImage(bytes);
    } catch (error) {
      if (!(error instanceof ImageError)) throw new Error(`not an ImageError: ${(error as Error)?.stack ?? String(error)}`);
    }
  });
  slowest = Math.max(slowest, ms);
  if (ms > HANG_MS) throw new Error(`decodeImage took ${ms.toFixed(0)} ms on ${bytes.length} bytes`);
  if (image) {
    decoded++;
    validateImage(image); // whatever decodes is a valid image…
    const again = decodeImage(encodeImage(image)); // …and survives a round trip unchanged
    if (JSON.stringify(again) !== JSON.stringify(image)) throw new Error('round trip changed the image');
  }
  return true;
}

function rebuild(header: unknown, payload: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header) ?? 'null', 'utf8');
  const prefix = Buffer.alloc(16);
  MAGIC.copy(prefix);
  prefix.writeUInt16BE(IMAGE_VERSION, 8);
  prefix.writeUInt32BE(json.length, 12);
  return reseal(Buffer.concat([prefix, json, payload, Buffer.alloc(32)]));
}

function split(image: Buffer): { header: Record<string, unknown>; payload: Buffer } {
  const length = image.readUInt32BE(12);
  return { header: JSON.parse(image.toString('utf8', 16, 16 + length)), payload: image.subarray(16 + length, image.length - 32) };
}

const anyCorpus = fc.constantFrom(...corpus).map((b) => new Uint8Array(b));

t.test('the corpus holds real images that decode', async (t) => {
  t.ok(corpus.length >= 4, `${corpus.length} real images`);
  for (const bytes of corpus) t.ok(validateImage(decodeImage(bytes)) === undefined);
  t.ok(corpus.some((b) => decodeImage(b).state === 'CLOSE_WAIT'), 'one is CLOSE_WAIT');
  t.ok(corpus.some((b) => decodeImage(b).family === 6), 'one is IPv6');
  const queued = decodeImage(corpus[1]!);
  t.ok(queued.recvQueue.length > 0 && queued.sentUnacked.length + queued.unsent.length > 0, `one has queued bytes both ways (${queued.recvQueue.length} in, ${queued.sentUnacked.length}+${queued.unsent.length} out)`);
});

t.test('random bytes', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), check), { numRuns: runs(2000) });
  // Behind a valid magic and version, so the length checks are reached.
  const prefixed = fc.uint8Array({ maxLength: 2048 }).map((tail) => {
    const b = Buffer.concat([MAGIC, Buffer.from([0, IMAGE_VERSION]), Buffer.from(tail)]);
    return new Uint8Array(b);
  });
  fc.assert(fc.property(prefixed, check), { numRuns: runs(2000) });
  t.pass('only ImageError, no hang');
});

t.test('mutated real images: checksum catches them', async (t) => {
  let caught = 0;
  fc.assert(
    fc.property(mutated(anyCorpus), (bytes) => {
      check(bytes);
      try {
        decodeImage(bytes);
      } catch (error) {
        if ((error as ImageError).code === 'ERR_IMAGE_CHECKSUM') caught++;
      }
    }),
    { numRuns: runs(2000) },
  );
  t.ok(caught > 0, `${caught} mutations refused by the checksum`);
});

t.test('mutated real images, re-sealed: the parser behind the checksum', async (t) => {
  fc.assert(fc.property(mutated(anyCorpus).map(reseal), check), { numRuns: runs(3000) });
  t.pass('only ImageError or a valid image');
});

t.test('structurally mutated headers (any JSON value at any field), re-sealed', async (t) => {
  const mutation = fc.tuple(fc.constantFrom(...corpus), fc.array(fc.tuple(fc.nat(), fc.oneof(fc.jsonValue(), fc.constant(undefined))), { minLength: 1, maxLength: 3 }));
  let refusedFields = 0;
  fc.assert(
    fc.property(mutation, ([image, edits]) => {
      const { header, payload } = split(image);
      for (const [pick, value] of edits) {
        // Walk to a random object inside the header and replace (or delete) one of its keys.
        let target: Record<string, unknown> = header;
        for (let depth = 0; depth < 3; depth++) {
          const keys = Object.keys(target).filter((k) => typeof target[k] === 'object' && target[k] !== null);
          if (keys.length === 0 || (pick >> depth) % 2 === 0) break;
          target = target[keys[(pick >> 3) % keys.length]!] as Record<string, unknown>;
        }
        const keys = Object.keys(target);
        const key = keys.length > 0 ? keys[pick % keys.length]! : 'extra';
        if (value === undefined) delete target[key];
        else target[key] = structuredClone(value); // a fresh copy: a shared one could make a cycle
      }
      const bytes = rebuild(header, payload);
      check(bytes);
      try {
        decodeImage(bytes);
      } catch (error) {
        if (['ERR_IMAGE_FIELD', 'ERR_IMAGE_HEADER', 'ERR_IMAGE_LENGTH'].includes((error as ImageError).code)) refusedFields++;
      }
    }),
    { numRuns: runs(3000) },
  );
  t.ok(refusedFields > 0, `${refusedFields} bad headers refused field by field`);
});

t.test('lying lengths are refused before anything is allocated', async (t) => {
  const image = corpus[1]!;
  const { header, payload } = split(image);
  const huge = [2 ** 31, 2 ** 32 - 1, 2 ** 40, Number.MAX_SAFE_INTEGER];
  const before = process.memoryUsage().arrayBuffers;
  for (const n of huge) {
    for (const field of ['recvQueue', 'sentUnacked', 'unsent']) {
      const lying = { ...header, lengths: { ...(header.lengths as object), [field]: n } };
      t.throws(() => decodeImage(rebuild(lying, payload)), { code: 'ERR_IMAGE_LENGTH' }, `${field} = ${n}`);
    }
  }
  // A header length beyond the input, or beyond the 64 KiB header ceiling.
  for (const n of [0xffffffff, 65 * 1024, image.length]) {
    const b = Buffer.from(image);
    b.writeUInt32BE(n, 12);
    t.throws(() => decodeImage(reseal(b)), { code: 'ERR_IMAGE_TRUNCATED' }, `header length ${n}`);
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  t.ok(grown < 64 * 1024 * 1024, `no large allocation (${(grown / 1024).toFixed(0)} KiB of array buffers)`);
  t.throws(() => decodeImage(new Uint8Array(0)), { code: 'ERR_IMAGE_TRUNCATED' });
});

t.test('valid images round-trip whatever their field values', async (t) => {
  const base = decodeImage(corpus[1]!);
  const arbitraryImage = fc.record({
    recvSeq: fc.integer({ min: 0, max: 0xffffffff }),
    sendSeq: fc.integer({ min: 0, max: 0xffffffff }),
    recvQueue: fc.uint8Array({ maxLength: 4096 }),
    sentUnacked: fc.uint8Array({ maxLength: 4096 }),
    unsent: fc.uint8Array({ maxLength: 4096 }),
    mss: fc.integer({ min: 1, max: 65535 }),
    timestamp: fc.integer({ min: 0, max: 0xffffffff }),
    port: fc.integer({ min: 1, max: 65535 }),
  });
  fc.assert(
    fc.property(arbitraryImage, (v) => {
      const image = {
        ...base,
        recvSeq: v.recvSeq,
        sendSeq: v.sendSeq,
        recvQueue: Buffer.from(v.recvQueue),
        sentUnacked: Buffer.from(v.sentUnacked),
        unsent: Buffer.from(v.unsent),
        options: { ...base.options, mss: v.mss },
        timestamp: v.timestamp,
        peer: { ...base.peer, port: v.port },
      };
      const again = decodeImage(encodeImage(image));
      return again.recvQueue.equals(image.recvQueue) && again.unsent.equals(image.unsent) && again.sendSeq === v.sendSeq && again.peer.port === v.port;
    }),
    { numRuns: runs(1000) },
  );
  t.pass('round trip exact');
});

t.test('summary', async (t) => {
  t.comment(`decodeImage fuzz: ${cases} cases, ${decoded} decoded to valid images, slowest ${slowest.toFixed(2)} ms`);
  t.ok(cases >= runs(12000), `${cases} cases ran`);
});
