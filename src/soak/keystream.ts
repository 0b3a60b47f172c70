/**
 * The soak's traffic: each direction of each connection carries a keyed pseudo-random stream
 * (AES-256-CTR of zeros), so any end can compute the byte expected at any offset. A receiver
 * checks every byte as it arrives and remembers the first offset that differs: a lost,
 * duplicated or corrupted byte anywhere is caught where it happens, across any number of
 * moves, with only (key, offset) as state to migrate.
 */
import { createCipheriv, createHash } from 'node:crypto';

/** 0: client to server, 1: server to client. */
export type Direction = 0 | 1;

export function streamBytes(key: Buffer, direction: Direction, offset: number, length: number): Buffer {
  const block = Math.floor(offset / 16);
  const skip = offset % 16;
  const iv = Buffer.alloc(16);
  iv.writeUInt8(direction, 0);
  iv.writeBigUInt64BE(BigInt(block), 8);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  return cipher.update(Buffer.alloc(skip + length)).subarray(skip);
}

/** sha256 of the first `length` bytes of a stream, computed independently of either end. */
export function streamDigest(key: Buffer, direction: Direction, length: number): string {
  const hash = createHash('sha256');
  const step = 1 << 20;
  for (let offset = 0; offset < length; offset += step) hash.update(streamBytes(key, direction, offset, Math.min(step, length - offset)));
  return hash.digest('hex');
}

/** Checks arriving bytes against the stream; keeps the offset reached and the first mismatch. */
export class StreamVerifier {
  /** Offset of the first byte that differed (-1: none). */
  firstBad = -1;
  constructor(readonly key: Buffer, readonly direction: Direction, public offset = 0) {}

  push(chunk: Buffer): void {
    if (this.firstBad < 0) {
      const expected = streamBytes(this.key, this.direction, this.offset, chunk.length);
      if (!expected.equals(chunk)) {
        let i = 0;
        while (expected[i] === chunk[i]) i++;
        this.firstBad = this.offset + i;
      }
    }
    this.offset += chunk.length;
  }
}
