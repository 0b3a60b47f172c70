/**
 * The Node side of a checkpoint: what libuv and the stream machinery hold above the kernel,
 * how to stop them touching the fd, and how to give a restored fd back to Node.
 */
import net from 'node:net';
import * as ll from './lowlevel.js';
import { SocketStateError } from './errors.js';
import { internals, socketFd, type SocketInternals } from './socket-fd.js';
import type { NodeStateImage } from './image.js';

/** Bytes Node holds that the kernel has not taken yet (stream buffer plus libuv's write queue). */
export function pendingWriteBytes(socket: net.Socket): number {
  return socket.writableLength + (internals(socket)._handle?.writeQueueSize ?? 0);
}

/**
 * Pushes Node's pending writes into the kernel send queue so the checkpoint captures them as
 * unsent bytes. Raising the send buffer makes the kernel wake the writer (sock_setsockopt calls
 * sk_write_space), libuv then writes everything at once; no need to wait for the peer to read.
 */
export async function flushPendingWrites(socket: net.Socket, timeoutMs: number): Promise<void> {
  const pending = () => pendingWriteBytes(socket);
  if (pending() === 0) return;
  const fd = socketFd(socket);
  const { outq } = ll.queueSizes(fd);
  const needed = outq + pending() + 64 * 1024;
  if (ll.getOption(fd, 'SO_SNDBUF') < needed) ll.setOption(fd, 'SO_SNDBUFFORCE', needed);
  const deadline = Date.now() + timeoutMs;
  while (pending() > 0) {
    if (socket.destroyed) throw new SocketStateError('ERR_SOCKET_CLOSED', 'socket was destroyed while its writes were flushed');
    if (Date.now() > deadline) {
      throw new SocketStateError('ERR_WRITE_PENDING', `${pending()} bytes of pending writes did not reach the kernel within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Stops libuv reading. readStop alone does not stick: Node restarts reading from _read()
 * whenever `_handle.reading` is false, so it is left true while the socket is frozen.
 */
export function stopReading(socket: net.Socket): void {
  const handle = internals(socket)._handle;
  if (!handle || typeof handle.readStop !== 'function') {
    throw new SocketStateError('ERR_NO_FD', 'socket has no libuv handle to stop');
  }
  handle.readStop();
  handle.reading = true;
}

/** Undoes stopReading (rollback). */
export function startReading(socket: net.Socket): void {
  const handle = internals(socket)._handle;
  if (!handle || typeof handle.readStart !== 'function') return;
  handle.reading = true;
  handle.readStart();
}

/**
 * Bytes libuv already read that the application has not consumed. They are copied, not
 * removed: on rollback they stay where they are; on a restore they go back to the head of the
 * receive queue so the application reads them again, in order.
 */
const NOTHING_BUFFERED = Buffer.alloc(0);

export function bufferedReadBytes(socket: net.Socket): Buffer {
  const state = internals(socket)._readableState;
  if (!state || state.length === 0) return NOTHING_BUFFERED;
  const raw = state.buffer as unknown;
  // Node 20 keeps a linked BufferList (iterable); Node 22+ an array with a start index.
  const chunks: unknown[] = Array.isArray(raw)
    ? raw.slice((state as { bufferIndex?: number }).bufferIndex ?? 0)
    : Array.from(raw as Iterable<unknown>);
  const encoding = (state as { encoding?: BufferEncoding | null }).encoding ?? 'utf8';
  return Buffer.concat(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, encoding) : (c as Buffer))));
}

export function readNodeState(socket: net.Socket): NodeStateImage {
  const state = internals(socket)._readableState as { encoding?: string | null } | undefined;
  return {
    allowHalfOpen: socket.allowHalfOpen === true,
    timeout: socket.timeout ?? 0,
    encoding: state?.encoding ?? null,
  };
}

/** Hands a restored fd to Node as a net.Socket (libuv makes it non-blocking and watches it). */
export function adoptFd(fd: number, node: NodeStateImage): net.Socket {
  const socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: node.allowHalfOpen });
  if (node.timeout > 0) socket.setTimeout(node.timeout);
  if (node.encoding !== null) socket.setEncoding(node.encoding as BufferEncoding);
  return socket;
}

/**
 * Whether an http.Server has fed this socket's bytes of a request not yet complete (headers not
 * all there, or a body still arriving) to its parser. Those bytes are in the C++ parser, not in
 * Node's read buffer nor the kernel's queue: an image would lose them. `true` when it can tell
 * (see {@link httpParserMidMessage}); an upgraded socket (e.g. a WebSocket) has no parser any more.
 */
function httpRequestPartlyParsed(socket: net.Socket): boolean {
  const parser = internals(socket).parser;
  // A new connection counts as mid-message before its first byte (see below): bytesRead tells.
  if (!parser || socket.bytesRead === 0) return false;
  return httpParserMidMessage(socket, parser) === true;
}

/**
 * Whether the parser is between a message's first byte and its last, read from what Node keeps
 * for its headers/request timeouts (both also count a new connection until its first request):
 * - a listening http.Server's connection list (Node 18+): the parsers with a message under way
 *   are its active() ones;
 * - else the parser's own clock, duration() > 0 from a message's first byte to its last (Node
 *   18 to 21 only).
 * undefined when neither is there: a server that never listened (it only got sockets by
 * emit('connection')) on Node 22 or later.
 */
function httpParserMidMessage(socket: net.Socket, parser: NonNullable<SocketInternals['parser']>): boolean | undefined {
  const server = (socket as { server?: object | null }).server;
  if (server) {
    const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
    const list = key && (server as Record<symbol, { active?: () => unknown[] } | undefined>)[key];
    if (list && typeof list.active === 'function') return list.active().includes(parser);
  }
  if (typeof parser.duration === 'function') return parser.duration() > 0;
  return undefined;
}

/**
 * An http.Server socket with a request in flight, or part of one parsed, holds parser state
 * that cannot move.
 */
export function assertMovable(socket: net.Socket): void {
  // Fix: anything but a net.Socket (null, a plain object) used to fail with a TypeError on the
  // property reads below; callers are promised a SocketStateError.
  if (!(socket instanceof net.Socket)) {
    throw new SocketStateError('ERR_NOT_SOCKET', 'checkpoint() needs a net.Socket');
  }
  if ((socket as { encrypted?: boolean }).encrypted) {
    throw new SocketStateError('ERR_TLS_SOCKET', 'TLS sockets cannot be checkpointed: Node cannot export the TLS session state');
  }
  if (internals(socket)._httpMessage) {
    throw new SocketStateError('ERR_HTTP_IN_FLIGHT', 'an HTTP request is in flight on this socket; checkpoint it when idle (between keep-alive requests)');
  }
  if (httpRequestPartlyParsed(socket)) {
    throw new SocketStateError(
      'ERR_HTTP_PARTIAL_REQUEST',
      "part of an HTTP request has arrived and is held by Node's HTTP parser, where a checkpoint cannot read it; try again once the request is complete and answered",
    );
  }
  if (socket.destroyed) throw new SocketStateError('ERR_SOCKET_CLOSED', 'socket is destroyed');
  if (socket.connecting) throw new SocketStateError('ERR_SOCKET_CONNECTING', 'socket is still connecting');
  if (socket.writableEnded) {
    throw new SocketStateError('ERR_STATE_UNSUPPORTED', 'socket has ended its writable side (FIN sent or pending): FIN_WAIT/LAST_ACK/CLOSING states are not supported');
  }
}
