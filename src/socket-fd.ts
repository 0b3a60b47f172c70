/** The file descriptor behind a net.Socket: Node keeps it in the undocumented `_handle.fd`. */
import type { Socket } from 'node:net';
import { SocketStateError } from './errors.js';

/** The private parts of a net.Socket tcp-repair relies on, typed in one place. */
export interface SocketInternals {
  _handle?: {
    fd?: number;
    reading?: boolean;
    readStop?: () => number;
    readStart?: () => number;
    writeQueueSize?: number;
  } | null;
  _httpMessage?: unknown;
  /**
   * http.Server's parser for this socket (null once freed, e.g. after an upgrade). duration():
   * ms since the current message's first byte, 0 between messages (Node >= 18).
   */
  parser?: { duration?: () => number } | null;
  _readableState?: { buffer: unknown; length: number };
}

export function internals(socket: Socket): SocketInternals {
  return socket as unknown as SocketInternals;
}

/** The fd of a connected net.Socket; a clear error when there is none (closed, TLS-wrapped, pipe). */
export function socketFd(socket: Socket): number {
  const fd = internals(socket)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new SocketStateError('ERR_NO_FD', 'socket has no file descriptor (closed, not yet connected, or not a TCP handle)');
  }
  return fd;
}
