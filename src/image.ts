/**
 * The socket image: everything needed to bring a TCP connection back, and its byte format.
 *
 * Format (all integers big-endian):
 *   magic "TCPRIMG\n" (8) | format version u16 | reserved u16 | header length u32
 *   | header (UTF-8 JSON, self-describing) | payload (recvQueue, sentUnacked, unsent, back to back)
 *   | SHA-256 over everything before it (32)
 * Versioning: the format version changes only when an old reader would misread a new image;
 * new optional header fields keep the version (readers ignore fields they do not know).
 */
import crypto from 'node:crypto';
import { isIP } from 'node:net';
import type { Family, RepairWindow } from './native-types.js';
import { TcpRepairError } from './errors.js';

export const IMAGE_MAGIC = Buffer.from('TCPRIMG\n', 'latin1');
/** The image format version this build writes and the only one it reads. */
export const IMAGE_VERSION = 1;
/** Refuse headers larger than this before parsing (a real header is well under 2 KiB). */
const MAX_HEADER_BYTES = 64 * 1024;
const PREFIX_BYTES = 16;
const DIGEST_BYTES = 32;

/** TCP states an image may hold. */
export type ImageState = 'ESTABLISHED' | 'CLOSE_WAIT';
export const IMAGE_STATES: readonly ImageState[] = ['ESTABLISHED', 'CLOSE_WAIT'];

/** One end of the connection. */
export interface Endpoint {
  address: string;
  port: number;
}

/** TCP options negotiated in the handshake (they cannot be renegotiated). */
export interface NegotiatedOptions {
  /** MSS clamp (TCP_MAXSEG read in repair mode). */
  mss: number;
  sack: boolean;
  timestamps: boolean;
  /** Window scales; null when window scaling was not negotiated. */
  sndWscale: number | null;
  rcvWscale: number | null;
  /**
   * The connection sends microsecond timestamps (6.7+, a route's `tcp_usec_ts` feature); absent
   * means milliseconds, the only kind before 6.7. See {@link SocketImage.timestamp}.
   */
  usecTimestamps?: boolean;
}

/** Socket options an application may have set; restored as they were. */
export interface SocketOptionsImage {
  noDelay: boolean;
  keepAlive: boolean;
  keepIdle: number;
  keepInterval: number;
  keepCount: number;
  userTimeout: number;
  sendBuffer: number;
  receiveBuffer: number;
  /** IP_TOS (IPv4) or IPV6_TCLASS (IPv6). */
  tos: number;
  ttl: number;
  priority: number;
  mark: number;
  notsentLowat: number;
  reuseAddress: boolean;
  congestion: string;
}

/** State Node keeps above the kernel. */
export interface NodeStateImage {
  allowHalfOpen: boolean;
  /** socket.setTimeout value in ms (0: none). */
  timeout: number;
  /** setEncoding value, or null for Buffers. */
  encoding: string | null;
}

/**
 * Everything needed to bring a TCP connection back: what {@link checkpoint} returns and
 * {@link restore} takes. It holds the connection's sequence numbers and payload bytes: whoever has
 * it can hijack the connection, so keep it like a secret.
 */
export interface SocketImage {
  version: number;
  family: Family;
  local: Endpoint;
  peer: Endpoint;
  state: ImageState;
  /** rcv_nxt: sequence of the next byte expected from the peer (after recvQueue). */
  recvSeq: number;
  /** write_seq: sequence after the last byte queued to send (after unsent). */
  sendSeq: number;
  /** Received bytes the application has not read: Node's buffered bytes, then the kernel's. */
  recvQueue: Buffer;
  /** Bytes sent but not acknowledged by the peer. */
  sentUnacked: Buffer;
  /** Bytes queued but never sent (kernel send queue tail plus Node's pending writes). */
  unsent: Buffer;
  options: NegotiatedOptions;
  /**
   * TCP_TIMESTAMP clock value at checkpoint, in milliseconds (microseconds with
   * `options.usecTimestamps`). Since 6.7 the kernel reads and writes this value's lowest bit as the
   * microsecond flag; from older kernels it is just part of the clock (see restore).
   */
  timestamp: number;
  /** TCP_REPAIR_WINDOW at checkpoint (before the freeze closed the send window); null if unsupported. */
  window: RepairWindow | null;
  socketOptions: SocketOptionsImage;
  node: NodeStateImage;
  /** Wall-clock time of the checkpoint (ms since the epoch). */
  takenAt: number;
}

/** Why an image was refused (the `code` of an {@link ImageError}). */
export type ImageErrorCode =
  | 'ERR_IMAGE_TRUNCATED'
  | 'ERR_IMAGE_FOREIGN'
  | 'ERR_IMAGE_VERSION'
  | 'ERR_IMAGE_CHECKSUM'
  | 'ERR_IMAGE_HEADER'
  | 'ERR_IMAGE_FIELD'
  | 'ERR_IMAGE_LENGTH';

/** A malformed, corrupt, foreign or unsupported image. Nothing was restored. */
export class ImageError extends TcpRepairError<ImageErrorCode> {}

interface HeaderJson extends Omit<SocketImage, 'recvQueue' | 'sentUnacked' | 'unsent'> {
  lengths: { recvQueue: number; sentUnacked: number; unsent: number };
}

/** Serialises an image: versioned, self-describing header, payload, SHA-256 over all of it. */
export function encodeImage(image: SocketImage): Buffer {
  validateImage(image);
  // The header is the image minus its payloads, plus their lengths: one copy of the image's
  // fields, unknown ones included, in their order. (A rest copy, not a spread with the payloads
  // set to undefined: JSON.stringify takes 3 µs instead of 5 on it, inside a migration's freeze.)
  const { recvQueue, sentUnacked, unsent, ...header } = image as SocketImage & Record<string, unknown>;
  header.version = IMAGE_VERSION;
  (header as Record<string, unknown>).lengths = { recvQueue: recvQueue.length, sentUnacked: sentUnacked.length, unsent: unsent.length };
  const json = JSON.stringify(header);
  const headerLength = Buffer.byteLength(json, 'utf8');
  const bodyEnd = PREFIX_BYTES + headerLength + recvQueue.length + sentUnacked.length + unsent.length;
  // One allocation for the whole image, filled in place.
  const out = Buffer.allocUnsafe(bodyEnd + DIGEST_BYTES);
  IMAGE_MAGIC.copy(out, 0);
  out.writeUInt16BE(IMAGE_VERSION, 8);
  out.writeUInt16BE(0, 10);
  out.writeUInt32BE(headerLength, 12);
  out.write(json, PREFIX_BYTES, 'utf8');
  let at = PREFIX_BYTES + headerLength;
  out.set(recvQueue, at);
  at += recvQueue.length;
  out.set(sentUnacked, at);
  at += sentUnacked.length;
  out.set(unsent, at);
  out.set(sha256(out.subarray(0, bodyEnd)), bodyEnd);
  return out;
}

/** Parses and checks bytes from {@link encodeImage}; throws {@link ImageError} on anything wrong. */
export function decodeImage(bytes: Uint8Array): SocketImage {
  if (!(bytes instanceof Uint8Array)) throw new ImageError('ERR_IMAGE_FIELD', 'image must be a Buffer or Uint8Array');
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < IMAGE_MAGIC.length || !buf.subarray(0, IMAGE_MAGIC.length).equals(IMAGE_MAGIC)) {
    if (buf.length < IMAGE_MAGIC.length && IMAGE_MAGIC.subarray(0, buf.length).equals(buf)) {
      throw new ImageError('ERR_IMAGE_TRUNCATED', `image truncated: ${buf.length} bytes`);
    }
    throw new ImageError('ERR_IMAGE_FOREIGN', 'not a tcp-repair socket image (bad magic)');
  }
  if (buf.length < PREFIX_BYTES + DIGEST_BYTES) {
    throw new ImageError('ERR_IMAGE_TRUNCATED', `image truncated: ${buf.length} bytes`);
  }
  const version = buf.readUInt16BE(8);
  if (version !== IMAGE_VERSION) {
    throw new ImageError('ERR_IMAGE_VERSION', `image format version ${version} is not supported (this reader: ${IMAGE_VERSION})`);
  }
  const headerLength = buf.readUInt32BE(12);
  if (headerLength > MAX_HEADER_BYTES || PREFIX_BYTES + headerLength + DIGEST_BYTES > buf.length) {
    throw new ImageError('ERR_IMAGE_TRUNCATED', `image header length ${headerLength} exceeds the image (${buf.length} bytes)`);
  }
  const bodyEnd = buf.length - DIGEST_BYTES;
  const digest = sha256(buf.subarray(0, bodyEnd));
  if (!digest.equals(buf.subarray(bodyEnd))) {
    throw new ImageError('ERR_IMAGE_CHECKSUM', 'image checksum mismatch: the image is corrupt or truncated');
  }
  let header: HeaderJson;
  try {
    header = JSON.parse(buf.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerLength)) as HeaderJson;
  } catch {
    throw new ImageError('ERR_IMAGE_HEADER', 'image header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || typeof header.lengths !== 'object' || header.lengths === null) {
    throw new ImageError('ERR_IMAGE_HEADER', 'image header lacks payload lengths');
  }
  const { recvQueue: rl, sentUnacked: sl, unsent: ul } = header.lengths;
  for (const [name, n] of [['recvQueue', rl], ['sentUnacked', sl], ['unsent', ul]] as const) {
    if (!Number.isSafeInteger(n) || (n as number) < 0) throw new ImageError('ERR_IMAGE_FIELD', `bad payload length for ${name}`);
  }
  const payloadStart = PREFIX_BYTES + headerLength;
  if (payloadStart + rl + sl + ul !== bodyEnd) {
    throw new ImageError('ERR_IMAGE_LENGTH', 'payload lengths do not match the image size');
  }
  // The payloads are copied (the caller may reuse `bytes`), all three in one allocation.
  const payload = Buffer.allocUnsafe(bodyEnd - payloadStart);
  buf.copy(payload, 0, payloadStart, bodyEnd);
  const { lengths: _lengths, ...fields } = header;
  const image = fields as Omit<HeaderJson, 'lengths'> as SocketImage;
  image.recvQueue = payload.subarray(0, rl);
  image.sentUnacked = payload.subarray(rl, rl + sl);
  image.unsent = payload.subarray(rl + sl);
  validateImage(image);
  return image;
}

/** One-shot SHA-256 (crypto.hash, Node >= 20.12) where available: no Hash object per image. */
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;
function sha256(data: Uint8Array): Buffer {
  return oneShot ? oneShot('sha256', data, 'buffer') : crypto.createHash('sha256').update(data).digest();
}

function fail(field: string, why: string): never {
  throw new ImageError('ERR_IMAGE_FIELD', `image field ${field} ${why}`);
}

function checkInt(value: unknown, field: string, min: number, max: number): void {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) fail(field, `must be an integer in ${min}..${max}`);
}

function checkBool(value: unknown, field: string): void {
  if (typeof value !== 'boolean') fail(field, 'must be a boolean');
}

/**
 * isIP with a small cache: many images share an address (the service's; a few peers), and the
 * regular expressions of isIP cost a third of a validation.
 */
const ipVersions = new Map<string, number>();
function ipVersionOf(address: string): number {
  let version = ipVersions.get(address);
  if (version === undefined) {
    version = isIP(address);
    if (ipVersions.size >= 1024) ipVersions.clear();
    ipVersions.set(address, version);
  }
  return version;
}

function checkEndpoint(value: unknown, field: string, family: Family): void {
  const e = value as Endpoint;
  if (typeof e !== 'object' || e === null || typeof e.address !== 'string') fail(field, 'must be { address, port }');
  const ipVersion = ipVersionOf(e.address);
  if (ipVersion === 0 || (family === 4 && ipVersion !== 4)) fail(`${field}.address`, `is not an IPv${family} address`);
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) fail(`${field}.port`, 'must be an integer in 1..65535');
}

// Field names built once: validateImage runs on every restore (and decode), and building them
// per call cost about as much as the checks themselves.
const WINDOW_FIELDS = (['sndWl1', 'sndWnd', 'maxWindow', 'rcvWnd', 'rcvWup'] as const).map((k) => [k, `window.${k}`] as const);
const INT_OPTION_FIELDS = (['keepIdle', 'keepInterval', 'keepCount', 'userTimeout', 'sendBuffer', 'receiveBuffer', 'tos', 'ttl', 'priority', 'mark', 'notsentLowat'] as const).map(
  (k) => [k, `socketOptions.${k}`] as const,
);
const CONGESTION_NAME = /^[a-z0-9_]{0,15}$/;

/** Checks every field an image must have, with the ranges the kernel accepts. */
export function validateImage(image: SocketImage): void {
  if (typeof image !== 'object' || image === null) fail('image', 'must be an object');
  if (image.version !== IMAGE_VERSION) fail('version', `must be ${IMAGE_VERSION}`);
  if (image.family !== 4 && image.family !== 6) fail('family', 'must be 4 or 6');
  checkEndpoint(image.local, 'local', image.family);
  checkEndpoint(image.peer, 'peer', image.family);
  if (!IMAGE_STATES.includes(image.state)) fail('state', `must be one of ${IMAGE_STATES.join(', ')}`);
  checkInt(image.recvSeq, 'recvSeq', 0, 0xffffffff);
  checkInt(image.sendSeq, 'sendSeq', 0, 0xffffffff);
  for (const name of ['recvQueue', 'sentUnacked', 'unsent'] as const) {
    if (!Buffer.isBuffer(image[name])) fail(name, 'must be a Buffer');
  }
  const o = image.options;
  if (typeof o !== 'object' || o === null) fail('options', 'must be an object');
  checkInt(o.mss, 'options.mss', 1, 65535);
  checkBool(o.sack, 'options.sack');
  checkBool(o.timestamps, 'options.timestamps');
  if (o.usecTimestamps !== undefined) checkBool(o.usecTimestamps, 'options.usecTimestamps');
  if ((o.sndWscale === null) !== (o.rcvWscale === null)) fail('options', 'window scales must both be set or both null');
  if (o.sndWscale !== null) checkInt(o.sndWscale, 'options.sndWscale', 0, 14);
  if (o.rcvWscale !== null) checkInt(o.rcvWscale, 'options.rcvWscale', 0, 14);
  checkInt(image.timestamp, 'timestamp', 0, 0xffffffff);
  if (image.window !== null) {
    const w = image.window;
    if (typeof w !== 'object') fail('window', 'must be an object or null');
    for (const [k, field] of WINDOW_FIELDS) checkInt(w[k], field, 0, 0xffffffff);
  }
  const s = image.socketOptions;
  if (typeof s !== 'object' || s === null) fail('socketOptions', 'must be an object');
  checkBool(s.noDelay, 'socketOptions.noDelay');
  checkBool(s.keepAlive, 'socketOptions.keepAlive');
  checkBool(s.reuseAddress, 'socketOptions.reuseAddress');
  for (const [k, field] of INT_OPTION_FIELDS) checkInt(s[k], field, -1, 0x7fffffff);
  if (typeof s.congestion !== 'string' || !CONGESTION_NAME.test(s.congestion)) fail('socketOptions.congestion', 'must be a congestion control name');
  const n = image.node;
  if (typeof n !== 'object' || n === null) fail('node', 'must be an object');
  checkBool(n.allowHalfOpen, 'node.allowHalfOpen');
  checkInt(n.timeout, 'node.timeout', 0, 0x7fffffff);
  if (n.encoding !== null && (typeof n.encoding !== 'string' || !Buffer.isEncoding(n.encoding))) fail('node.encoding', 'must be a Buffer encoding or null');
  if (typeof image.takenAt !== 'number' || !Number.isFinite(image.takenAt)) fail('takenAt', 'must be a number');
}
