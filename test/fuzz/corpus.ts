/**
 * Fuzzing support: a corpus of real socket images (taken from live loopback connections in
 * several states, then resumed), byte mutators, and the number of runs. The default suite runs
 * a few thousand cases in all; `npm run fuzz` sets TCP_REPAIR_FUZZ_SCALE for 100,000+.
 */
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { checkpoint, resume, encodeImage } from 'tcp-repair';

const SCALE = Number(process.env.TCP_REPAIR_FUZZ_SCALE ?? '1');

/** Runs for one property: `base` in the default suite, times the scale under `npm run fuzz`. */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * SCALE));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pair(host: string, serverOptions: net.ServerOpts = {}) {
  const server = net.createServer(serverOptions);
  server.listen(0, host);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect({ host, port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  await once(client, 'connect');
  const [srv] = await accepted;
  srv.on('error', () => {});
  client.on('error', () => {});
  return { server, srv, client, close: () => { srv.destroy(); client.destroy(); server.close(); } };
}

/** Encoded images of real connections: idle, queued both ways, IPv6, CLOSE_WAIT, Node state. */
export async function realImages(): Promise<Buffer[]> {
  const images: Buffer[] = [];
  const take = async (socket: net.Socket) => {
    const image = await checkpoint(socket);
    images.push(encodeImage(image));
    resume(image);
  };
  const idle = await pair('127.0.0.1');
  await take(idle.srv);
  idle.close();

  const queued = await pair('127.0.0.1');
  queued.srv.pause();
  // The client's Node must not read either, or the kernel acknowledges everything at once.
  (queued.client as unknown as { _handle: { readStop(): void; reading: boolean } })._handle.readStop();
  (queued.client as unknown as { _handle: { reading: boolean } })._handle.reading = true;
  queued.client.write(Buffer.alloc(50_000, 7)); // unread by the server: receive queue
  queued.srv.write(Buffer.alloc(400_000, 9)); // unread by the client: sent-unacked and unsent
  await sleep(50);
  await take(queued.srv);
  queued.close();

  const v6 = await pair('::1');
  v6.srv.setEncoding('latin1');
  v6.srv.setTimeout(12_345);
  v6.srv.setNoDelay(true);
  v6.srv.setKeepAlive(true, 5000);
  v6.client.write('hello');
  await sleep(20);
  await take(v6.srv);
  v6.close();

  const half = await pair('127.0.0.1', { allowHalfOpen: true });
  half.srv.pause();
  half.client.end('last words');
  await sleep(50);
  await take(half.srv);
  half.close();
  return images;
}

/** Re-seals a mutated image: fixes the trailing SHA-256 so the parser behind it is reached. */
export function reseal(bytes: Uint8Array): Buffer {
  const buf = Buffer.from(bytes);
  if (buf.length < 32) return buf;
  const body = buf.subarray(0, buf.length - 32);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Byte-level mutations: flip, set, insert, delete, truncate, duplicate a slice, splice two inputs. */
export function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 256 }) }),
  );
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([input, edits]) => {
    let b = Buffer.from(input);
    for (const e of edits) {
      const at = b.length === 0 ? 0 : e.at % b.length;
      switch (e.kind) {
        case 'flip': if (b.length) b[at]! ^= 1 << e.bit; break;
        case 'set': if (b.length) b[at] = e.value; break;
        case 'insert': b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]); break;
        case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.length)]); break;
        case 'truncate': b = b.subarray(0, at); break;
        case 'duplicate': b = Buffer.concat([b.subarray(0, at + e.length), b.subarray(at)]); break;
      }
    }
    return new Uint8Array(b);
  });
}

/** Runs `fn`, returning how long it took; a case slower than this is reported as a hang. */
export const HANG_MS = 2000;
export function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}
