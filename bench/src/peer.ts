/**
 * The far end of every measured connection, in its own process (the fd limit is per process,
 * and the measured process must not pay for the peers). Driven over IPC:
 *   { connect: { address, port, count, sendBytes } } → { connected: count }
 *     with sendBytes > 0 each connection sends them, waits for their ACK, then drops everything
 *     it receives (drop-all filter) so that it never answers the measured side (workload.ts);
 *   { lift: true } → { lifted: true }: filters off (the measured sources have been released);
 *   { verify: { bytes } } → { verified: { ok, pending, broken } }: each connection should have
 *     received `bytes` bytes in all (what the measured side sent, plus the proof byte after its
 *     restore); none may have seen an error or an end.
 */
import net from 'node:net';
import { lowlevel, socketFd } from 'tcp-repair';
import { silencePeer } from './workload.js';

interface ConnectCommand {
  address: string;
  port: number;
  count: number;
  sendBytes: number;
}

interface PeerConnection {
  socket: net.Socket;
  received: number;
  broken: string | null;
  silenced: boolean;
}

const connections: PeerConnection[] = [];
/** Connects in flight at once: the measured side accepts as fast as it can, not faster. */
const CONCURRENCY = 256;

function open(command: ConnectCommand): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: command.address, port: command.port }, () => {
      const connection: PeerConnection = { socket, received: 0, broken: null, silenced: false };
      socket.on('data', (chunk: Buffer) => (connection.received += chunk.length));
      socket.on('end', () => (connection.broken ??= 'end'));
      socket.on('error', (error: NodeJS.ErrnoException) => (connection.broken ??= error.code ?? error.message));
      connections.push(connection);
      if (command.sendBytes === 0) return resolve();
      socket.write(Buffer.alloc(command.sendBytes, 1), () => void silence(connection).then(resolve, reject));
    });
    socket.once('error', reject);
  });
}

async function silence(connection: PeerConnection): Promise<void> {
  await silencePeer(socketFd(connection.socket));
  connection.silenced = true;
}

async function connectAll(command: ConnectCommand): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < command.count) {
      next++;
      await open(command);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, command.count) }, worker));
}

function lift(): void {
  for (const c of connections) {
    if (c.silenced && !c.socket.destroyed) lowlevel.detachFreezeFilter(socketFd(c.socket));
    c.silenced = false;
  }
}

/**
 * Waits for every connection to receive its bytes. A connection still waiting at the deadline
 * but not broken counts as pending: at 10,000 connections the restored sockets' retransmission
 * timers fire together, loopback's backlog (netdev_max_backlog) drops part of the burst and
 * their backoff can outlast any sensible wait. Broken means an error (RST) or an end.
 */
async function verify(bytes: number, timeoutMs: number): Promise<{ ok: number; pending: number; broken: string[] }> {
  const deadline = Date.now() + timeoutMs;
  const done = (c: PeerConnection) => c.broken !== null || c.received >= bytes;
  while (!connections.every(done) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const broken = connections.filter((c) => c.broken !== null || c.received > bytes).map((c) => c.broken ?? `received ${c.received} bytes, more than the ${bytes} sent`);
  const ok = connections.filter((c) => c.broken === null && c.received === bytes).length;
  return { ok, pending: connections.length - ok - broken.length, broken: broken.slice(0, 5) };
}

process.on('message', (message: { connect?: ConnectCommand; lift?: boolean; verify?: { bytes: number; timeoutMs: number } }) => {
  if (message.lift) {
    lift();
    process.send?.({ lifted: true });
  } else if (message.connect) {
    connectAll(message.connect).then(
      () => process.send?.({ connected: connections.length }),
      (error: Error) => process.send?.({ fatal: error.message }),
    );
  } else if (message.verify) {
    void verify(message.verify.bytes, message.verify.timeoutMs).then((verified) => process.send?.({ verified }));
  }
});
process.send?.({ started: true });
