/**
 * One host-to-host measurement: the test hosts (network namespaces client, host-a, host-b, as
 * `tcp-repair demo` builds them, 198.18.0.0/15 and fd00::/8 only), N live client connections
 * to a service on host-a, every one of them moved to host-b mid-traffic together with the
 * service address, then each connection's bytes checked and every host's RST counter read.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { createTopology, execIn, type Topology } from '../../dist/esm/topology/index.js';
import { killChildren } from '../../dist/esm/topology/cleanup.js';
import { nextMessage } from './ipc.js';
import { forkIn } from './netns.js';
import type { ClientConnectionResult } from './host-client.js';
import type { DemoReport } from '../../dist/esm/demo/report.js';

const SERVICE_PORT = 7000;
const CONTROL_PORT = 7100;

export interface HostSample {
  connections: number;
  moved: number;
  stayed: string[];
  error?: string;
  /** migrate()'s phases (ms). */
  timings: Record<string, number>;
  /** ip addr del/add and the announcements, as the topology measured them (ms). */
  addressMoveMs: number;
  imageBytes: number;
  payloadBytes: number;
  /** The freeze on the clients' clock (wall-clock ms). */
  freeze: { start: number; end: number };
  results: ClientConnectionResult[];
  /** RSTs each host's stack sent during the run (TcpOutRsts), clients' close included. */
  resets: Record<string, number>;
  /** The same, counted before the clients finish (move and traffic after it only). */
  resetsDuringMove: Record<string, number>;
  /**
   * Why each host sent RSTs or dropped connections while the clients closed (TcpExt counters of
   * /proc/net/netstat that changed between before and after the finish; see resetCauses()).
   */
  finishCounters: Record<string, Record<string, number>>;
  /**
   * The RSTs each host sent while the clients closed, as tcpdump prints them (at most 20 a host),
   * with the FIN each connection saw before: what a reset at close answered.
   */
  closeResets: Record<string, string[]>;
  intervalMs: number;
  /** CPU time each service process used from the start of migrate() to its report (ms). */
  cpuMs: Record<'host-a' | 'host-b', number>;
  /** The machine's 1-minute load average after the move (other work skews wall-clock figures). */
  loadAverage: number;
}

/** What host-service reports: the demo's summary of migrate() (src/demo/report.ts), and when it started. */
export type HostMigrationReport = DemoReport['migration'] & {
  /** Wall-clock ms (clock.ts) when migrate() was called. */
  startedAt: number;
};

export interface HostOptions {
  /** Request interval of each request/response connection (ms). */
  intervalMs: number;
  streams: number;
  streamBytes: number;
  ipv6: boolean;
  progress: (text: string) => void;
}

/**
 * Each request/response connection asks once per interval: at least a second, so that most are
 * idle through a freeze and some are caught in it, and at most 2000 requests a second in all.
 */
export function requestInterval(connections: number): number {
  return Math.max(1000, Math.round(connections / 2));
}

const ROLES = ['client', 'host-a', 'host-b'] as const;

/**
 * The TcpExt counters that name a reason for an RST or a dropped connection: a close with unread
 * data (TCPAbortOnClose), data for a closed socket (TCPAbortOnData), out of memory or orphans
 * (TCPAbortOnMemory), TIME-WAIT table full (TCPTimeWaitOverflow), listen queue full, etc.
 */
const CAUSES = /^(TCPAbort\w+|TCPTimeWaitOverflow|ListenOverflows|ListenDrops|TCPBacklogDrop|TCPMemoryPressures|TCPReqQFullDrop|TCPRcvQDrop|TCPOFODrop|TCPZeroWindowDrop)$/;

async function resetCauses(topology: Topology): Promise<Record<string, Record<string, number>>> {
  const texts = await Promise.all(ROLES.map((role) => execIn(topology.host(role).ns, 'cat', ['/proc/net/netstat'])));
  return Object.fromEntries(
    ROLES.map((role, i) => {
      const lines = texts[i]!.stdout.split('\n').filter((line) => line.startsWith('TcpExt:'));
      const [names, values] = lines.map((line) => line.split(/\s+/).slice(1));
      const counters: Record<string, number> = {};
      names?.forEach((name, k) => {
        if (CAUSES.test(name)) counters[name] = Number(values?.[k] ?? 0);
      });
      return [role, counters];
    }),
  );
}

function changed(before: Record<string, Record<string, number>>, after: Record<string, Record<string, number>>): Record<string, Record<string, number>> {
  return Object.fromEntries(
    Object.entries(after).map(([role, counters]) => [
      role,
      Object.fromEntries(Object.entries(counters).flatMap(([name, n]) => (n !== (before[role]?.[name] ?? 0) ? [[name, n - (before[role]?.[name] ?? 0)]] : []))),
    ]),
  );
}

const run = promisify(execFile);
// FINs and RSTs, IPv4 or IPv6 (no extension headers: the test hosts send none), and the small
// segments around them: an RST at close answered a pure ACK (docs/bench.md, last section).
const FIN_OR_RST = 'tcp port 7000 and ((ip and tcp[13] & 5 != 0) or (ip6 and ip6[53] & 5 != 0) or less 100)';
const RST = '(ip and tcp[13] & 4 != 0) or (ip6 and ip6[53] & 4 != 0)';

/** tcpdump of FINs and RSTs on the service port in every host, while the clients close. */
function captureClose(topology: Topology): { stop: () => Promise<Record<string, string[]>> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tcp-repair-bench-close-'));
  const file = (role: string) => path.join(dir, `${role}.pcap`);
  const dumps = ROLES.map((role) => topology.spawnIn(role, 'tcpdump', ['-i', 'any', '-nn', '-s', '128', '-U', '-w', file(role), FIN_OR_RST], { stdio: 'ignore' }));
  return {
    async stop() {
      await sleep(200);
      await Promise.all(dumps.map((dump) => new Promise<void>((resolve) => {
        if (dump.exitCode !== null || dump.signalCode !== null) return resolve();
        dump.once('exit', () => resolve());
        dump.kill('SIGINT');
      })));
      const out: Record<string, string[]> = {};
      for (const role of ROLES) {
        const resets = await run('tcpdump', ['-nn', '-r', file(role), RST]).then((r) => r.stdout.split('\n').filter(Boolean), () => []);
        if (resets.length === 0) continue;
        // Each reset with the FINs of its connection before it, from every host's capture.
        const lines: string[] = [];
        for (const reset of resets.slice(0, 20)) {
          const ports = /\.(\d+) > [^ ]+\.(\d+):/.exec(reset);
          const clientPort = ports ? (ports[1] === '7000' ? ports[2] : ports[1]) : undefined;
          lines.push(`RST ${reset}`);
          if (!clientPort) continue;
          for (const other of ROLES) {
            const fins = await run('tcpdump', ['-nn', '-r', file(other), `port ${clientPort}`]).then((r) => r.stdout.split('\n').filter(Boolean), () => []);
            for (const fin of fins) lines.push(`  seen on ${other}: ${fin}`);
          }
        }
        out[role] = lines;
      }
      rmSync(dir, { recursive: true, force: true });
      return out;
    },
  };
}

async function countAllResets(topology: Topology): Promise<Record<string, number>> {
  const roles = ['client', 'host-a', 'host-b'] as const;
  const counts = await Promise.all(roles.map((role) => topology.countResets(role)));
  return Object.fromEntries(roles.map((role, i) => [role, counts[i]!]));
}

function cpuOf(child: ChildProcess): Promise<number> {
  const answer = nextMessage<number>(child, 'cpuMs', 'CPU time', 10_000);
  child.send({ cpu: true });
  return answer;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lets the services exit on their own (and write their CPU profiles), killing them after 5 s. */
async function stopGracefully(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => resolve(), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.send({ stop: true });
        }),
    ),
  );
}

export async function measureHostOnce(connections: number, options: HostOptions): Promise<HostSample> {
  const topology = await createTopology({ prefix: 'bench', ipv6: options.ipv6 });
  const children: ChildProcess[] = [];
  const timeoutMs = 60_000 + connections * 10;
  try {
    const key = randomBytes(32).toString('hex');
    const listen = [topology.service.ipv4, ...(topology.service.ipv6 ? [topology.service.ipv6] : [])];
    const config = JSON.stringify({ listen, port: SERVICE_PORT, control: { host: topology.hostB.underlay.ipv4, port: CONTROL_PORT }, key });
    const hostB = forkIn(topology.hostB.ns, 'host-service', ['b', config]);
    children.push(hostB);
    hostB.on('message', (m: { log?: string }) => m.log && process.stderr.write(`host-b: ${m.log}\n`));
    await nextMessage(hostB, 'ready', 'host-b receiver', timeoutMs);
    const hostA = forkIn(topology.hostA.ns, 'host-service', ['a', config]);
    children.push(hostA);
    await nextMessage(hostA, 'ready', 'host-a service', timeoutMs);
    options.progress(`host-to-host: N=${connections}, connecting the clients…`);
    const client = forkIn(topology.client.ns, 'host-client', [
      JSON.stringify({ addresses: listen, port: SERVICE_PORT, connections, streams: options.streams, streamBytes: options.streamBytes, intervalMs: options.intervalMs }),
    ]);
    children.push(client);
    await nextMessage(client, 'connected', 'clients', timeoutMs);
    const resetsBefore = await countAllResets(topology);
    // Traffic on host-a first: every request/response connection has asked at least once.
    await sleep(Math.max(1000, options.intervalMs + 500));

    options.progress(`host-to-host: N=${connections}, moving every connection…`);
    let addressMoveMs = 0;
    hostA.on('message', (m: { handover?: boolean }) => {
      if (!m.handover) return;
      topology.moveServiceAddress('host-a', 'host-b').then(
        (move) => {
          addressMoveMs = move.total;
          hostA.send({ handoverDone: true });
        },
        (error: Error) => hostA.send({ handoverFailed: error.message }),
      );
    });
    const cpuBefore = await Promise.all([hostA, hostB].map((child) => cpuOf(child)));
    hostA.send({ migrate: true });
    const report = await nextMessage<HostMigrationReport>(hostA, 'report', 'migration', timeoutMs);
    const cpuAfter = await Promise.all([hostA, hostB].map((child) => cpuOf(child)));
    // migrate() froze the first socket once its control channel was up and host-b had readied
    // its sockets, and the freeze ended when activation was confirmed.
    const start = report.startedAt + (report.timings.connect ?? 0) + (report.timings.prepare ?? 0);
    const freeze = { start, end: start + (report.timings.frozen ?? 0) };

    options.progress(`host-to-host: N=${connections}, traffic on host-b…`);
    // Every request/response connection asks at least once more, now served by host-b.
    await sleep(Math.max(1000, options.intervalMs + 1000));
    const resetsBeforeFinish = await countAllResets(topology);
    const causesBefore = await resetCauses(topology);
    const capture = captureClose(topology);
    await sleep(300); // tcpdump running
    client.send({ finish: { freeze } });
    const results = await nextMessage<ClientConnectionResult[]>(client, 'results', 'client results', timeoutMs);
    const resetsAfter = await countAllResets(topology);
    const finishCounters = changed(causesBefore, await resetCauses(topology));
    const closeResets = await capture.stop();
    await stopGracefully([hostA, hostB]);
    return {
      connections,
      moved: report.moved,
      stayed: report.stayed,
      ...(report.error ? { error: report.error } : {}),
      timings: report.timings,
      addressMoveMs,
      imageBytes: report.imageBytes,
      payloadBytes: report.payloadBytes,
      freeze,
      results,
      resets: Object.fromEntries(Object.entries(resetsAfter).map(([host, n]) => [host, n - (resetsBefore[host] ?? 0)])),
      resetsDuringMove: Object.fromEntries(Object.entries(resetsBeforeFinish).map(([host, n]) => [host, n - (resetsBefore[host] ?? 0)])),
      finishCounters,
      closeResets,
      intervalMs: options.intervalMs,
      cpuMs: { 'host-a': cpuAfter[0]! - cpuBefore[0]!, 'host-b': cpuAfter[1]! - cpuBefore[1]! },
      loadAverage: os.loadavg()[0]!,
    };
  } finally {
    killChildren(children);
    topology.destroy();
  }
}
