/**
 * Small generic helpers for tests against the real kernel: connected loopback pairs whose
 * sockets Node does not read behind our back, checksums, and waiting.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { lowlevel, socketFd } from 'tcp-repair';
import { scaled } from './time-scale.js';

export type Family = 4 | 6;

export interface Pair {
  /** A raw client socket created with lowlevel.createSocket (blocking, never read by Node). */
  clientFd: number;
  /** The accepted side, a net.Socket created with pauseOnConnect: Node does not read it until resume(). */
  server: net.Socket;
  serverFd: number;
  /** The listener's address and port the client connected to. */
  address: string;
  port: number;
  family: Family;
  /** Destroys the server socket and closes clientFd unless it was released (adopted or closed by the test). */
  close(): void;
  /** Stops close() from closing clientFd (the test closed it, or a net.Socket adopted it). */
  releaseClient(): void;
}

export interface PairOptions {
  family?: Family;
  /** Address to listen on and connect to; defaults to 127.0.0.1 / ::1. */
  address?: string;
  /** Called with the raw client fd before connect (set TCP_MAXSEG, buffers, …). */
  beforeConnect?: (fd: number) => void;
  /** Keep the server socket open after the client's FIN (net's allowHalfOpen). */
  allowHalfOpen?: boolean;
}

/** A connected loopback TCP pair: a raw client fd and a paused accepted net.Socket. */
export async function tcpPair(options: PairOptions = {}): Promise<Pair> {
  const family = options.family ?? 4;
  const address = options.address ?? (family === 4 ? '127.0.0.1' : '::1');
  const listener = net.createServer({ pauseOnConnect: true, allowHalfOpen: options.allowHalfOpen ?? false });
  listener.listen(0, address);
  await once(listener, 'listening');
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const clientFd = lowlevel.createSocket(family);
  let clientOpen = true;
  try {
    options.beforeConnect?.(clientFd);
    // A blocking connect on loopback completes in the kernel without the event loop.
    lowlevel.connect(clientFd, family, address, port);
  } catch (error) {
    lowlevel.closeFd(clientFd);
    listener.close();
    throw error;
  }
  const [server] = await accepted;
  listener.close();
  server.on('error', () => {});
  const serverFd = socketFd(server);
  return {
    clientFd,
    server,
    serverFd,
    address,
    port,
    family,
    close() {
      server.destroy();
      if (clientOpen) {
        clientOpen = false;
        lowlevel.closeFd(clientFd);
      }
    },
    releaseClient() {
      clientOpen = false;
    },
  };
}

/** Wraps a connected TCP fd in a net.Socket (libuv makes it non-blocking and owns it from now on). */
export function adopt(fd: number): net.Socket {
  const socket = new net.Socket({ fd, readable: true, writable: true });
  socket.on('error', () => {});
  return socket;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export { randomBytes };

/** Collects exactly `length` bytes from a (resumed) socket, or rejects after `timeoutMs` (a hang guard, scaled: time-scale.ts). */
export function readBytes(socket: net.Socket, length: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.pause();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) done();
    };
    const onEnd = () => done(new Error(`socket ended after ${got} of ${length} bytes`));
    // A socket the kernel gave up on (ETIMEDOUT after retransmission timeouts) closes without 'end'.
    const onClose = () => done(new Error(`socket closed (${(socket.errored as NodeJS.ErrnoException | null)?.code ?? 'no error'}) after ${got} of ${length} bytes`));
    const timer = setTimeout(() => done(new Error(`timed out after ${got} of ${length} bytes; ${kernelView(socket)}`)), scaled(timeoutMs));
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.once('close', onClose);
    socket.resume();
  });
}

/** What the kernel says of a stalled socket (TCP_INFO): for the message of a read that timed out. */
function kernelView(socket: net.Socket): string {
  try {
    const i = lowlevel.tcpInfo(socketFd(socket));
    return `kernel: state ${i.state}, ca_state ${i.caState}, retransmits ${i.retransmits}, backoff ${i.backoff}, rto ${i.rto} us, unacked ${i.unacked}, lost ${i.lost}, cwnd ${i.sndCwnd}, snd_wnd ${i.sndWnd}, bytes sent ${i.bytesSent} / acked ${i.bytesAcked} / received ${i.bytesReceived}, last data recv ${i.lastDataRecv} ms ago`;
  } catch (error) {
    return `no TCP_INFO: ${(error as Error).message}`;
  }
}

/** Writes `data` and resolves once Node handed all of it to the kernel. */
export function writeAll(socket: net.Socket, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (error) => (error ? reject(error) : resolve())));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` every few milliseconds until it holds; throws after `timeoutMs` (a hang guard, scaled: time-scale.ts). */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + scaled(timeoutMs);
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A TCP port on `address` that nothing listens on right now (bound then released). */
export async function unusedPort(address = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.listen(0, address);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Blackhole {
  port: number;
  fd: number;
  close(): void;
}

/**
 * A listening socket with the drop-all filter: segments addressed to its port vanish without an
 * RST. Give `port` to hold a port that a closed repair-mode socket used (bound with the forced
 * reuse of repair mode); with port 0 it is a silent peer address for sockets restored by hand.
 */
export function blackhole(family: Family, address: string, port = 0): Blackhole {
  const fd = lowlevel.createSocket(family);
  try {
    // Repair mode forces address reuse for bind and listen; the listener simply stays in it.
    lowlevel.repairOn(fd);
    lowlevel.bind(fd, family, address, port);
    lowlevel.attachFreezeFilter(fd);
    lowlevel.listen(fd, 1);
  } catch (error) {
    lowlevel.closeFd(fd);
    throw error;
  }
  let open = true;
  return {
    fd,
    port: lowlevel.localAddress(fd).port,
    close() {
      if (open) lowlevel.closeFd(fd);
      open = false;
    },
  };
}

/** The error `fn` throws (fails loudly if it returns). */
export function thrown(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn();
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected the call to throw');
}
