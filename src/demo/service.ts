/**
 * The demo service process (runs inside host-a or host-b, driven over IPC by `tcp-repair demo`).
 * host-a serves clients and, when told, migrates every connection to host-b; host-b runs the
 * receiver and serves what arrives.
 */
import net from 'node:net';
import { hangGuardMs } from '../child-ipc.js';
import { migrate } from '../migrate/migrate.js';
import { createReceiver } from '../migrate/receiver.js';
import { newConnectionState, serve, stateOf, type ConnectionState } from './protocol.js';
import { migrationSummary } from './report.js';

interface Command {
  cmd: 'migrate' | 'count' | 'handover-done' | 'handover-failed' | 'stop';
  error?: string;
}

const role = process.argv[2];
process.env.TCP_REPAIR_DEMO_HOST = role === 'a' ? 'host-a' : 'host-b';
const config = JSON.parse(process.argv[3] ?? '{}') as {
  listen: string[];
  port: number;
  control: { host: string; port: number };
  key: string;
};

function send(message: unknown): void {
  process.send?.(message);
}

const connections = new Set<net.Socket>();
let handoverWaiter: ((error?: string) => void) | null = null;

/**
 * host-a's accept count. A client's connect() completes with the handshake, before this process
 * has accepted the socket (or, with a full backlog, before the kernel has even queued it), so
 * the demo waits for this count before it migrates: a socket not yet accepted would not move.
 * Sent on request ('count') and after every change, at most once per turn of the event loop.
 */
let accepted = 0;
let countQueued = false;

function reportCount(): void {
  if (countQueued) return;
  countQueued = true;
  setImmediate(() => {
    countQueued = false;
    send({ accepted: { total: accepted, open: connections.size } });
  });
}

async function runHostA(): Promise<void> {
  const servers = await Promise.all(
    config.listen.map(
      (address) =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer((socket) => {
            accepted++;
            connections.add(socket);
            socket.once('close', () => {
              connections.delete(socket);
              reportCount();
            });
            serve(socket, newConnectionState());
            reportCount();
          });
          server.once('error', reject);
          server.listen(config.port, address, () => resolve(server));
        }),
    ),
  );
  send({ ready: true });
  process.on('message', async (message: Command) => {
    if (message.cmd === 'handover-done' || message.cmd === 'handover-failed') {
      handoverWaiter?.(message.error);
      return;
    }
    if (message.cmd === 'stop') {
      for (const s of servers) s.close();
      process.exit(0);
    }
    if (message.cmd === 'count') {
      reportCount();
      return;
    }
    if (message.cmd !== 'migrate') return;
    const sockets = [...connections];
    const report = await migrate(sockets, {
      to: config.control,
      key: config.key,
      // migrate()'s default per-step wait, stretched on slow (emulated) machines like the rest of
      // the demo's hang guards (child-ipc.ts).
      timeoutMs: hangGuardMs(10_000),
      meta: (socket) => stateOf(socket) as unknown as Record<string, unknown>,
      handover: () =>
        new Promise<void>((resolve, reject) => {
          handoverWaiter = (error) => (error ? reject(new Error(error)) : resolve());
          send({ handover: true });
        }),
    });
    for (const m of report.moved) connections.delete(m.socket);
    send({ report: migrationSummary(report) });
  });
}

async function runHostB(): Promise<void> {
  // The receiver's default session timeout, stretched as above.
  const receiver = createReceiver({ host: config.control.host, port: config.control.port, key: config.key, timeoutMs: hangGuardMs(30_000) }, (socket, meta) => {
    connections.add(socket);
    serve(socket, meta as unknown as ConnectionState);
  });
  receiver.on('sessionError', (error: Error) => send({ log: `receiver session: ${error.message}` }));
  await receiver.listen();
  send({ ready: true });
  process.on('message', (message: Command) => {
    if (message.cmd === 'stop') process.exit(0);
  });
}

(role === 'a' ? runHostA() : runHostB()).catch((error: unknown) => {
  send({ fatal: (error as Error).stack ?? String(error) });
  process.exit(1);
});
