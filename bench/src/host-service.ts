/**
 * The service of the host-to-host bench, run inside host-a or host-b (as `tcp-repair demo` runs
 * its own): the demo's protocol (src/demo/protocol.ts), migrate() on host-a, a receiver on
 * host-b. Over IPC it reports the migration with the wall-clock time migrate() started, so the
 * driver can place the freeze on the clients' timeline.
 *   argv: a|b <json config>
 *   a: { migrate: true } → (asks { handover: true }, gets { handoverDone } | { handoverFailed })
 *      → { report };  both: { cpu: true } → { cpuMs }, { stop: true } → exit
 */
import net from 'node:net';
import { createReceiver, migrate } from 'tcp-repair';
import { newConnectionState, serve, stateOf, type ConnectionState } from '../../dist/esm/demo/protocol.js';
import { migrationSummary } from '../../dist/esm/demo/report.js';
import type { HostMigrationReport } from './host.js';
import { wallClock } from './clock.js';

interface Config {
  listen: string[];
  port: number;
  control: { host: string; port: number };
  key: string;
}

const role = process.argv[2];
const config = JSON.parse(process.argv[3] ?? '{}') as Config;
process.env.TCP_REPAIR_DEMO_HOST = role === 'a' ? 'host-a' : 'host-b';
const send = (message: unknown) => process.send?.(message);
const connections = new Set<net.Socket>();
let handoverWaiter: ((error?: string) => void) | null = null;

async function hostA(): Promise<void> {
  await Promise.all(
    config.listen.map(
      (address) =>
        new Promise<void>((resolve, reject) => {
          const server = net.createServer((socket) => {
            connections.add(socket);
            socket.once('close', () => connections.delete(socket));
            serve(socket, newConnectionState());
          });
          server.once('error', reject);
          server.listen({ host: address, port: config.port, backlog: 4096 }, () => resolve());
        }),
    ),
  );
  process.on('message', (message: { migrate?: boolean; handoverDone?: boolean; handoverFailed?: string }) => {
    if (isStop(message)) process.exit(0);
    if (message.handoverDone || message.handoverFailed !== undefined) {
      handoverWaiter?.(message.handoverFailed);
      return;
    }
    if (!message.migrate) return;
    const startedAt = wallClock();
    migrate([...connections], {
      to: config.control,
      key: config.key,
      meta: (socket) => stateOf(socket) as unknown as Record<string, unknown>,
      handover: () =>
        new Promise<void>((resolve, reject) => {
          handoverWaiter = (error) => (error ? reject(new Error(error)) : resolve());
          send({ handover: true });
        }),
      timeoutMs: 60_000,
    }).then((report) => {
      send({ report: { startedAt, ...migrationSummary(report) } satisfies HostMigrationReport });
    }, (error: Error) => send({ fatal: error.stack ?? error.message }));
  });
}

async function hostB(): Promise<void> {
  const receiver = createReceiver({ host: config.control.host, port: config.control.port, key: config.key, timeoutMs: 120_000 }, (socket, meta) => {
    connections.add(socket);
    serve(socket, meta as unknown as ConnectionState);
  });
  receiver.on('sessionError', (error: Error) => send({ log: `receiver session: ${error.message}` }));
  await receiver.listen();
  process.on('message', (message: unknown) => {
    if (isStop(message)) process.exit(0);
  });
}

/** { stop: true }: exit normally (a CPU profile, if asked for, is written then). */
function isStop(message: unknown): boolean {
  return (message as { stop?: boolean }).stop === true;
}

/** { cpu: true } → { cpuMs }: the process's CPU time so far, so the driver can tell what the move cost. */
process.on('message', (message: { cpu?: boolean }) => {
  if (message.cpu) {
    const used = process.cpuUsage();
    send({ cpuMs: (used.user + used.system) / 1000 });
  }
});

(role === 'a' ? hostA() : hostB()).then(
  () => send({ ready: true }),
  (error: unknown) => {
    send({ fatal: (error as Error).stack ?? String(error) });
    process.exit(1);
  },
);
