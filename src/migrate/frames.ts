/**
 * Framing of the migration control channel: [u32 payload length][u8 type][payload].
 * Control messages are JSON; an image frame carries binary: [u32 id][u8 meta kind][u32 meta
 * length][meta][image].
 *
 * Memory bounds (the peer is authenticated, but a bug or a stolen key must not exhaust memory):
 * the decoder never allocates what a header declares; it keeps only the bytes that really
 * arrived, and refuses a frame at its header when the declared length exceeds its type's
 * ceiling, before any of the body is buffered. So at most one frame of at most the ceiling
 * (64 MiB for images by default, 4 MiB for control messages) is ever held per channel.
 */
import { TcpRepairError } from '../errors.js';

export const FrameType = {
  HELLO: 1,
  IMAGE: 2,
  IMAGES_DONE: 3,
  RESTORED: 4,
  FAILED: 5,
  ACTIVATE: 6,
  ACTIVATED: 7,
  ABORT: 8,
  BYE: 9,
  PREPARED: 10,
  STATUS: 11,
  STATUS_REPLY: 12,
} as const;
export type FrameTypeName = keyof typeof FrameType;
const TYPE_NAMES = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

/**
 * Default ceiling of an IMAGE frame. An image holds its socket's queues: the receive queue is
 * bounded by the receive buffer (tcp_rmem max, 6 MiB by default), the send queue by the send
 * buffer plus Node's pending writes. 64 MiB leaves room for large tuned buffers; a larger
 * image stays on the source (ERR_FRAME_TOO_LARGE) instead of moving.
 */
export const MAX_IMAGE_FRAME_BYTES = 64 * 1024 * 1024;
/** Ceiling of a JSON control frame: an id list for ~500,000 connections. */
export const MAX_CONTROL_FRAME_BYTES = 4 * 1024 * 1024;
/** The largest ceiling either end may be configured with (a u32 length could say 4 GiB). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
const HEADER_BYTES = 5;

export interface FrameLimits {
  /** Ceiling of IMAGE frames (default MAX_IMAGE_FRAME_BYTES, at most MAX_FRAME_BYTES). */
  maxImageBytes?: number;
}

function ceilingOf(type: FrameTypeName, limits: FrameLimits): number {
  return type === 'IMAGE' ? Math.min(limits.maxImageBytes ?? MAX_IMAGE_FRAME_BYTES, MAX_FRAME_BYTES) : MAX_CONTROL_FRAME_BYTES;
}

/** A malformed, oversized or truncated frame, or a channel that failed or timed out. */
export class FrameError extends TcpRepairError {}

export interface Frame {
  type: FrameTypeName;
  payload: Buffer;
}

export function encodeFrame(type: FrameTypeName, payload: Buffer, limits: FrameLimits = {}): Buffer {
  const frame = allocFrame(type, payload.length, limits);
  frame.set(payload, HEADER_BYTES);
  return frame;
}

/**
 * A frame of `length` payload bytes with its header written and the payload left to fill: one
 * allocation per frame (a migration sends two frames per connection, so copies and garbage
 * here add to the freeze).
 */
function allocFrame(type: FrameTypeName, length: number, limits: FrameLimits): Buffer {
  const ceiling = ceilingOf(type, limits);
  if (length > ceiling) throw new FrameError('ERR_FRAME_TOO_LARGE', `${type} frame of ${length} bytes exceeds ${ceiling}`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.writeUInt8(FrameType[type], 4);
  return frame;
}

export function encodeJsonFrame(type: FrameTypeName, value: unknown): Buffer {
  const json = JSON.stringify(value);
  const frame = allocFrame(type, Buffer.byteLength(json, 'utf8'), {});
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

/** Accumulates stream bytes and yields whole frames; throws FrameError on a malformed stream. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly limits: FrameLimits = {}) {}

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < HEADER_BYTES) break;
      const head = this.peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      const type = TYPE_NAMES.get(head.readUInt8(4));
      if (type === undefined) throw new FrameError('ERR_FRAME_TYPE', `unknown frame type ${head.readUInt8(4)}`);
      // Refused here, before the body is buffered: the declared length is only a claim.
      const ceiling = ceilingOf(type, this.limits);
      if (length > ceiling) throw new FrameError('ERR_FRAME_TOO_LARGE', `${type} frame declares ${length} bytes, more than ${ceiling}`);
      if (this.buffered < HEADER_BYTES + length) break;
      const whole = this.take(HEADER_BYTES + length);
      frames.push({ type, payload: whole.subarray(HEADER_BYTES) });
    }
    return frames;
  }

  /** Bytes of an incomplete frame still waiting (non-zero at end of stream means truncation). */
  pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

export function parseJson<T>(frame: Frame): T {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T;
  } catch {
    throw new FrameError('ERR_FRAME_JSON', `${frame.type} frame does not hold valid JSON`);
  }
}

const META_JSON = 0;
const META_BYTES = 1;

/** Per-connection application metadata: JSON-serialisable values or raw bytes. */
export type Meta = Buffer | string | number | boolean | null | { [key: string]: unknown } | unknown[];

export function encodeImageFrame(id: number, meta: Meta | undefined, image: Buffer, limits: FrameLimits = {}): Buffer {
  const isBytes = Buffer.isBuffer(meta);
  const metaBytes = isBytes ? (meta as Buffer) : Buffer.from(JSON.stringify(meta ?? null), 'utf8');
  const frame = allocFrame('IMAGE', 9 + metaBytes.length + image.length, limits);
  frame.writeUInt32BE(id, HEADER_BYTES);
  frame.writeUInt8(isBytes ? META_BYTES : META_JSON, HEADER_BYTES + 4);
  frame.writeUInt32BE(metaBytes.length, HEADER_BYTES + 5);
  frame.set(metaBytes, HEADER_BYTES + 9);
  frame.set(image, HEADER_BYTES + 9 + metaBytes.length);
  return frame;
}

export function decodeImageFrame(frame: Frame): { id: number; meta: Meta; image: Buffer } {
  const p = frame.payload;
  if (p.length < 9) throw new FrameError('ERR_FRAME_SHORT', 'IMAGE frame shorter than its header');
  const id = p.readUInt32BE(0);
  const kind = p.readUInt8(4);
  const metaLength = p.readUInt32BE(5);
  if (9 + metaLength > p.length) throw new FrameError('ERR_FRAME_SHORT', 'IMAGE frame meta length exceeds the frame');
  const metaBytes = p.subarray(9, 9 + metaLength);
  let meta: Meta;
  if (kind === META_BYTES) meta = Buffer.from(metaBytes);
  else if (kind === META_JSON) {
    try {
      meta = JSON.parse(metaBytes.toString('utf8')) as Meta;
    } catch {
      throw new FrameError('ERR_FRAME_JSON', 'IMAGE frame meta is not valid JSON');
    }
  } else throw new FrameError('ERR_FRAME_META', `unknown meta kind ${kind}`);
  return { id, meta, image: p.subarray(9 + metaLength) };
}
