/**
 * Least privilege: the operations that need CAP_NET_ADMIN, performed by tcp-repair-helper (a
 * small C program holding only that capability) when this process lacks it.
 *
 * Measured on 6.18: the kernel checks the capability when repair mode is switched (TCP_REPAIR
 * on/off), for SO_SNDBUFFORCE/SO_RCVBUFFORCE, IP(V6)_TRANSPARENT, SO_MARK, SO_PRIORITY above 6,
 * and (on this kernel) for attaching a socket filter. Everything repair mode allows (queue
 * selection, sequence numbers, options, window, timestamp, peek, refill) is checked against
 * the socket's repair flag, not the caller: once the helper has switched repair on for a
 * socket this process passed it, this process does the rest itself. So the helper stays tiny
 * and the unprivileged app keeps all the logic.
 *
 * Use: start the helper (`tcp-repair-helper --socket PATH --allow-uid UID`, see
 * docs/security.md), then `configureRepairHelper({ socketPath: PATH })` or set
 * TCP_REPAIR_HELPER=PATH. A process that has CAP_NET_ADMIN never uses the helper.
 */
import { constants as os } from 'node:os';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { native, packageRoot } from './load-addon.cjs';
import { isErrnoError, type ErrnoError } from './errors.js';

/** Where the repair helper listens, for {@link configureRepairHelper}. */
export interface RepairHelperOptions {
  /** The helper's Unix socket. */
  socketPath: string;
  /** Longest wait for one answer (ms, default 2000). */
  timeoutMs?: number;
}

/** Operation numbers of the helper protocol (helper/tcp-repair-helper.c). */
export const HelperOperation = {
  repair: 1,
  freezeFilter: 2,
  detachFilter: 3,
  sndbufForce: 4,
  rcvbufForce: 5,
  transparent: 6,
  mark: 7,
  priority: 8,
} as const;
export type HelperOperationName = keyof typeof HelperOperation;

const MAGIC = 0x31485254; // "TRH1"
const CAP_NET_ADMIN = 12n;

let configured: Required<RepairHelperOptions> | null | undefined;
let connection = -1;
let capability: boolean | undefined;

/** Points tcp-repair at a running helper; null turns the helper off. */
export function configureRepairHelper(options: RepairHelperOptions | null): void {
  disconnect();
  if (options === null) {
    configured = null;
    return;
  }
  if (typeof options?.socketPath !== 'string' || options.socketPath === '') throw new TypeError('configureRepairHelper needs { socketPath }');
  configured = { socketPath: options.socketPath, timeoutMs: options.timeoutMs ?? 2000 };
}

/** The helper in use (from configureRepairHelper or TCP_REPAIR_HELPER), or null. */
export function repairHelper(): Required<RepairHelperOptions> | null {
  if (configured === undefined) {
    const fromEnv = process.env.TCP_REPAIR_HELPER;
    configured = fromEnv ? { socketPath: fromEnv, timeoutMs: 2000 } : null;
  }
  return configured;
}

/** The helper program built with the addon (build/Release/tcp-repair-helper). */
export function repairHelperPath(): string {
  return path.join(packageRoot, 'build', 'Release', 'tcp-repair-helper');
}

/** Whether this process holds CAP_NET_ADMIN (effective). Read once. */
export function hasNetAdmin(): boolean {
  if (capability === undefined) {
    const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    capability = line ? ((BigInt(`0x${line[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n : true;
  }
  return capability;
}

/**
 * Runs a privileged operation: directly when this process may, through the helper when it
 * lacks CAP_NET_ADMIN and one is configured. Without either, the kernel's EPERM is thrown
 * with what is missing spelled out.
 */
export function privileged(operation: HelperOperationName, fd: number, value: number, syscall: string, direct: () => void): void {
  const helper = repairHelper();
  if (helper && !hasNetAdmin()) {
    callHelper(helper, operation, fd, value, syscall);
    return;
  }
  try {
    direct();
  } catch (error) {
    explainPermission(error);
    throw error;
  }
}

/** Whether privileged operations go through the helper: one is configured, and this process lacks CAP_NET_ADMIN. */
export function throughHelper(): boolean {
  return repairHelper() !== null && !hasNetAdmin();
}

/** Spells out what is missing in an EPERM a privileged operation met without CAP_NET_ADMIN. */
export function explainPermission(error: unknown): void {
  if (isErrnoError(error) && error.code === 'EPERM' && !hasNetAdmin()) {
    error.message += ': this process lacks CAP_NET_ADMIN; grant it, or run tcp-repair-helper and call configureRepairHelper({ socketPath }) (or set TCP_REPAIR_HELPER)';
  }
}

function disconnect(): void {
  if (connection >= 0) {
    try {
      native.close(connection);
    } catch {
      // already gone
    }
  }
  connection = -1;
}

function unreachable(helper: Required<RepairHelperOptions>, cause: unknown): Error {
  const e = cause as Error & { code?: string };
  return Object.assign(new Error(`the repair helper at ${helper.socketPath} does not answer (${e.message}): is tcp-repair-helper running, and is this user allowed?`), {
    code: 'ERR_REPAIR_HELPER',
    cause,
  });
}

function callHelper(helper: Required<RepairHelperOptions>, operation: HelperOperationName, fd: number, value: number, syscall: string): void {
  const request = Buffer.alloc(12);
  request.writeUInt32LE(MAGIC, 0);
  request.writeUInt16LE(HelperOperation[operation], 4);
  request.writeInt32LE(value, 8);
  let answer: Buffer | undefined;
  // One retry on a fresh connection: the helper may have been restarted since the last call.
  for (let attempt = 0; attempt < 2 && answer === undefined; attempt++) {
    try {
      if (connection < 0) connection = native.unixConnect(helper.socketPath, helper.timeoutMs);
      native.sendWithFds(connection, request, [fd]);
      answer = native.recvMessage(connection, 64);
      if (answer.length === 0) throw Object.assign(new Error('connection closed'), { code: 'ECONNRESET' });
    } catch (error) {
      disconnect();
      answer = undefined;
      const code = (error as ErrnoError).code;
      if (attempt === 1 || !['EPIPE', 'ECONNRESET', 'ENOTCONN'].includes(code)) throw unreachable(helper, error);
    }
  }
  if (answer!.length !== 8 || answer!.readUInt32LE(0) !== MAGIC) {
    disconnect();
    throw unreachable(helper, new Error('malformed answer'));
  }
  const result = answer!.readInt32LE(4);
  if (result === 0) return;
  throw helperError(-result, syscall, fd, helper.socketPath);
}

function helperError(errno: number, syscall: string, fd: number, socketPath: string): ErrnoError {
  const code = Object.entries(os.errno).find(([, n]) => n === errno)?.[0] ?? `E${errno}`;
  const why: Record<string, string> = {
    EXDEV: 'the socket belongs to another network namespace than the helper',
    EPROTONOSUPPORT: 'the helper only accepts TCP sockets',
    EAFNOSUPPORT: 'the helper only accepts IPv4 and IPv6 sockets',
    ENOTSOCK: 'the helper only accepts sockets',
    ERANGE: 'the value is beyond what the helper allows',
    EOPNOTSUPP: 'the helper does not perform this operation',
    EPERM: 'refused by the kernel (a listening socket cannot enter repair mode)',
  };
  const error = new Error(`${syscall} ${code} (via the repair helper at ${socketPath}${why[code] ? `: ${why[code]}` : ''})`) as ErrnoError;
  error.code = code;
  error.errno = -errno;
  error.syscall = syscall;
  error.fd = fd;
  return error;
}
