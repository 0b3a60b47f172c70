/**
 * The messages of a two-phase migration, and their byte encoding (one frame each):
 *
 *   sender                          receiver
 *   hello(version, count)   ──►
 *                           ◄──     hello(version, 0)
 *   image(id, meta, image) ──►      (restores, holds the socket back)
 *                           ◄──     restored(id) | failed(id, reason)
 *   (moves the service address)
 *   commit(ids | all)       ──►     (resumes the sockets)
 *   abort(ids | all, why)   ──►     (drops its copies; the sender resumes its own)
 *   done                    ◄─►
 *
 * Integers are big-endian u32; text is UTF-8. Every decoder checks lengths exactly: a payload
 * with bytes missing or left over is malformed, never guessed at.
 */
import { FrameError, type Frame } from './frames.js';

export const PROTOCOL_VERSION = 1;
/** "TCPR": a hello that does not start with it is not our protocol. */
const HELLO_MAGIC = 0x54435052;

export const MESSAGE_TYPES = { hello: 1, image: 2, restored: 3, failed: 4, commit: 5, abort: 6, done: 7 } as const;
export type MessageType = keyof typeof MESSAGE_TYPES;

/** Which images a commit or abort covers: a list of ids, or every image of the session. */
export type ImageSelection = readonly number[] | 'all';

export type Message =
  | { type: 'hello'; version: number; count: number }
  | { type: 'image'; id: number; meta: Uint8Array; image: Uint8Array }
  | { type: 'restored'; id: number }
  | { type: 'failed'; id: number; reason: string }
  | { type: 'commit'; ids: ImageSelection }
  | { type: 'abort'; ids: ImageSelection; reason: string }
  | { type: 'done' };

export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

function u32(value: number, what: string): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${what} must be a u32, got ${value}`);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value, 0);
  return b;
}

function selection(ids: ImageSelection): Buffer[] {
  if (ids === 'all') return [Buffer.from([1]), u32(0, 'count')];
  return [Buffer.from([0]), u32(ids.length, 'count'), ...ids.map((id) => u32(id, 'image id'))];
}

/** The payload parts of a message (kept apart so a large image is never copied). */
export function encodeMessage(message: Message): { type: number; parts: Uint8Array[] } {
  const type = MESSAGE_TYPES[message.type];
  switch (message.type) {
    case 'hello': {
      const b = Buffer.allocUnsafe(10);
      b.writeUInt32BE(HELLO_MAGIC, 0);
      if (!Number.isInteger(message.version) || message.version < 0 || message.version > 0xffff) throw new RangeError(`version must be a u16, got ${message.version}`);
      b.writeUInt16BE(message.version, 4);
      b.writeUInt32BE(u32(message.count, 'count').readUInt32BE(0), 6);
      return { type, parts: [b] };
    }
    case 'image':
      return { type, parts: [u32(message.id, 'image id'), u32(message.meta.length, 'meta length'), message.meta, message.image] };
    case 'restored':
      return { type, parts: [u32(message.id, 'image id')] };
    case 'failed':
      return { type, parts: [u32(message.id, 'image id'), Buffer.from(message.reason, 'utf8')] };
    case 'commit':
      return { type, parts: selection(message.ids) };
    case 'abort':
      return { type, parts: [...selection(message.ids), Buffer.from(message.reason, 'utf8')] };
    case 'done':
      return { type, parts: [] };
  }
}

class Reader {
  private offset = 0;
  constructor(private readonly payload: Buffer, private readonly what: string) {}
  u32(field: string): number {
    this.need(4, field);
    const value = this.payload.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  bytes(length: number, field: string): Buffer {
    this.need(length, field);
    const value = this.payload.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
  rest(): Buffer {
    const value = this.payload.subarray(this.offset);
    this.offset = this.payload.length;
    return value;
  }
  /** UTF-8 text; invalid sequences are malformed rather than silently replaced. */
  text(): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.rest());
    } catch {
      throw malformed(this.what, 'text is not valid UTF-8');
    }
  }
  finish(): void {
    if (this.offset !== this.payload.length) throw malformed(this.what, `${this.payload.length - this.offset} unexpected trailing bytes`);
  }
  private need(length: number, field: string): void {
    if (this.offset + length > this.payload.length) throw malformed(this.what, `too short for ${field} (${this.payload.length} bytes)`);
  }
}

function malformed(what: string, detail: string): FrameError {
  return new FrameError('ERR_FRAME_MALFORMED', `malformed ${what} message: ${detail}`);
}

function readSelection(reader: Reader, what: string): ImageSelection {
  const all = reader.bytes(1, 'selection flag')[0];
  const count = reader.u32('id count');
  if (all === 1) {
    if (count !== 0) throw malformed(what, '"all" with a list of ids');
    return 'all';
  }
  if (all !== 0) throw malformed(what, `selection flag ${all}`);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(reader.u32('image id'));
  return ids;
}

export function decodeMessage(frame: Frame): Message {
  const name = (Object.keys(MESSAGE_TYPES) as MessageType[]).find((key) => MESSAGE_TYPES[key] === frame.type);
  if (!name) throw new FrameError('ERR_FRAME_UNKNOWN_TYPE', `unknown message type ${frame.type}`);
  const r = new Reader(frame.payload, name);
  let message: Message;
  switch (name) {
    case 'hello': {
      const magic = r.u32('magic');
      if (magic !== HELLO_MAGIC) throw malformed('hello', `bad magic 0x${magic.toString(16)} (not a tcp-repair peer)`);
      const version = r.bytes(2, 'version').readUInt16BE(0);
      message = { type: 'hello', version, count: r.u32('count') };
      break;
    }
    case 'image': {
      const id = r.u32('image id');
      const meta = r.bytes(r.u32('meta length'), 'meta');
      message = { type: 'image', id, meta, image: r.rest() };
      break;
    }
    case 'restored':
      message = { type: 'restored', id: r.u32('image id') };
      break;
    case 'failed':
      message = { type: 'failed', id: r.u32('image id'), reason: r.text() };
      break;
    case 'commit':
      message = { type: 'commit', ids: readSelection(r, 'commit') };
      break;
    case 'abort':
      message = { type: 'abort', ids: readSelection(r, 'abort'), reason: '' };
      message.reason = r.text();
      break;
    case 'done':
      message = { type: 'done' };
      break;
  }
  r.finish();
  return message;
}

/** Meta as JSON: the common case for per-stream application state. */
export function jsonMeta(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function parseJsonMeta<T = unknown>(meta: Uint8Array): T {
  try {
    return JSON.parse(Buffer.from(meta.buffer, meta.byteOffset, meta.length).toString('utf8')) as T;
  } catch (error) {
    throw malformed('image', `meta is not JSON (${(error as Error).message})`);
  }
}
