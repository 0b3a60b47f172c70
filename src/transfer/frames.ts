/**
 * Length-prefixed frames: [u32 big-endian payload length][u8 type][payload]. The length is
 * checked against a hard maximum as soon as the 5-byte header is in, before anything is
 * allocated for the payload, so a hostile or broken peer cannot make us reserve 4 GiB.
 */

export const FRAME_HEADER_SIZE = 5;
/** Default maximum payload: one socket image with full queues fits with a wide margin. */
export const DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024;

export type FrameErrorCode = 'ERR_FRAME_TOO_LARGE' | 'ERR_FRAME_TRUNCATED' | 'ERR_FRAME_MALFORMED' | 'ERR_FRAME_UNKNOWN_TYPE';

export class FrameError extends Error {
  readonly code: FrameErrorCode;
  constructor(code: FrameErrorCode, message: string) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
  }
}

export interface Frame {
  type: number;
  payload: Buffer;
}

/** The header of a frame; send it followed by the payload (no copy of a large payload). */
export function frameHeader(type: number, payloadLength: number, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`frame type must be a byte, got ${type}`);
  if (payloadLength > maxFrameSize) {
    throw new FrameError('ERR_FRAME_TOO_LARGE', `frame payload of ${payloadLength} bytes exceeds the maximum of ${maxFrameSize}`);
  }
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeUInt32BE(payloadLength, 0);
  header.writeUInt8(type, 4);
  return header;
}

export function encodeFrame(type: number, payload: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): Buffer {
  return Buffer.concat([frameHeader(type, payload.length, maxFrameSize), payload]);
}

/**
 * Incremental decoder: push() the bytes as they arrive, get back the complete frames. Chunks are
 * kept as a list and joined once per frame, so a frame arriving in many pieces is copied once.
 */
export class FrameDecoder {
  private readonly maxFrameSize: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: FrameError | null = null;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= FRAME_HEADER_SIZE) {
      const header = this.peek(FRAME_HEADER_SIZE);
      const length = header.readUInt32BE(0);
      if (length > this.maxFrameSize) {
        this.failed = new FrameError('ERR_FRAME_TOO_LARGE', `peer announced a ${length}-byte frame; the maximum is ${this.maxFrameSize}`);
        throw this.failed;
      }
      if (this.buffered < FRAME_HEADER_SIZE + length) break;
      const whole = this.take(FRAME_HEADER_SIZE + length);
      frames.push({ type: whole.readUInt8(4), payload: whole.subarray(FRAME_HEADER_SIZE) });
    }
    return frames;
  }

  /** Call when the stream ends: an incomplete frame left over means the peer stopped mid-frame. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.buffered > 0) {
      this.failed = new FrameError('ERR_FRAME_TRUNCATED', `stream ended inside a frame (${this.buffered} bytes of it received)`);
      throw this.failed;
    }
  }

  private peek(length: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= length) return first.subarray(0, length);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, length);
  }

  private take(length: number): Buffer {
    if (this.chunks[0]!.length < length) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const taken = first.subarray(0, length);
    if (first.length === length) this.chunks.shift();
    else this.chunks[0] = first.subarray(length);
    this.buffered -= length;
    return taken;
  }
}
