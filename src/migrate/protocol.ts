/**
 * Messages of the two-phase migration, shared by both ends, and their parsers. Each parser
 * checks the shape it needs, so a malformed message from the peer is a FrameError
 * (ERR_FRAME_MESSAGE) and never a TypeError deep in the session, or a wrong id list acted upon.
 */
import { FrameError, parseJson, type Frame } from './frames.js';

/** 2: the receiver answers HELLO with PREPARED (sockets readied before the source freezes). */
export const PROTOCOL_VERSION = 2;

export interface Hello {
  version: number;
  count: number;
  /** The source's name for this migration, for a later STATUS query (absent: none possible). */
  session?: string;
  /** How many of the connections are IPv6 sockets (the receiver prepares sockets per family). */
  ipv6: number;
}
export interface Prepared {
  /** Sockets the receiver readied (fewer than announced if it hit a limit: not an error). */
  prepared: number;
  prepareMs: number;
}
export interface Restored {
  id: number;
  restoreMs: number;
}
export interface Failed {
  id: number;
  code: string;
  reason: string;
}
export interface IdList {
  ids: number[];
}
export interface Activated {
  ids: number[];
  activateMs: number;
}

/** Longest error text kept from the peer (it ends up in reports and logs). */
const MAX_TEXT = 1024;

function bad(frame: Frame, why: string): never {
  throw new FrameError('ERR_FRAME_MESSAGE', `malformed ${frame.type} message: ${why}`);
}

function object(frame: Frame): Record<string, unknown> {
  const value = parseJson<unknown>(frame);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(frame, 'not a JSON object');
  return value as Record<string, unknown>;
}

function isId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;
}

function duration(frame: Frame, value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) bad(frame, `${name} must be a non-negative number`);
  return value;
}

function text(frame: Frame, value: unknown, name: string): string {
  if (typeof value !== 'string') bad(frame, `${name} must be a string`);
  return value.slice(0, MAX_TEXT);
}

function ids(frame: Frame, value: unknown): number[] {
  if (!Array.isArray(value) || !value.every(isId)) bad(frame, 'ids must be an array of connection ids');
  return value as number[];
}

export function parseHello(frame: Frame): Hello {
  const o = object(frame);
  if (!Number.isInteger(o.version)) bad(frame, 'version must be an integer');
  if (!Number.isInteger(o.count) || (o.count as number) < 0) bad(frame, 'count must be a non-negative integer');
  const ipv6 = o.ipv6 ?? 0;
  if (!Number.isInteger(ipv6) || (ipv6 as number) < 0 || (ipv6 as number) > (o.count as number)) bad(frame, 'ipv6 must be an integer in 0..count');
  const session = o.session === undefined ? undefined : sessionName(frame, o.session);
  return { version: o.version as number, count: o.count as number, ipv6: ipv6 as number, ...(session === undefined ? {} : { session }) };
}

/** A session name: 1-64 lowercase hex digits (the source draws 16 random bytes). */
function sessionName(frame: Frame, value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{1,64}$/.test(value)) bad(frame, 'session must be 1-64 lowercase hex digits');
  return value;
}

export interface Status {
  session: string;
}
export interface StatusReply {
  /** The receiver activated the session's connections (ids: the ones it activated). */
  activated: boolean;
  ids: number[];
}

export function parseStatus(frame: Frame): Status {
  return { session: sessionName(frame, object(frame).session) };
}

export function parseStatusReply(frame: Frame): StatusReply {
  const o = object(frame);
  if (typeof o.activated !== 'boolean') bad(frame, 'activated must be a boolean');
  return { activated: o.activated, ids: ids(frame, o.ids) };
}

export function parsePrepared(frame: Frame): Prepared {
  const o = object(frame);
  if (!Number.isInteger(o.prepared) || (o.prepared as number) < 0) bad(frame, 'prepared must be a non-negative integer');
  return { prepared: o.prepared as number, prepareMs: duration(frame, o.prepareMs, 'prepareMs') };
}

export function parseIdList(frame: Frame): IdList {
  return { ids: ids(frame, object(frame).ids) };
}

export function parseRestored(frame: Frame): Restored {
  const o = object(frame);
  if (!isId(o.id)) bad(frame, 'id must be a connection id');
  return { id: o.id, restoreMs: duration(frame, o.restoreMs, 'restoreMs') };
}

export function parseFailed(frame: Frame): Failed {
  const o = object(frame);
  if (!isId(o.id)) bad(frame, 'id must be a connection id');
  return { id: o.id, code: text(frame, o.code, 'code'), reason: text(frame, o.reason, 'reason') };
}

export function parseActivated(frame: Frame): Activated {
  const o = object(frame);
  return { ids: ids(frame, o.ids), activateMs: duration(frame, o.activateMs, 'activateMs') };
}
