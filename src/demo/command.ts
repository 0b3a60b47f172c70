/**
 * `tcp-repair demo`: builds the test hosts, runs a service on host-a with live clients, moves
 * every connection to host-b mid-traffic together with the service address, and prints what
 * happened: connections moved, each phase's time, the stall clients saw, bytes verified, resets.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { waitForMessage, type WaitOptions } from '../child-ipc.js';
import { createTopology, type Topology } from '../topology/index.js';
import { killChildren, registerChild } from '../topology/cleanup.js';
import type { ConnectionResult } from './client.js';
import { formatReport, type DemoReport } from './report.js';

const SERVICE_PORT = 7000;
const CONTROL_PORT = 7100;

interface Message {
  ready?: boolean;
  connected?: number;
  /** host-a's accept count: every connection it accepted, and those still open. */
  accepted?: { total: number; open: number };
  handover?: boolean;
  report?: DemoReport['migration'];
  results?: ConnectionResult[];
  fatal?: string;
  log?: string;
}

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

/** Starts a node process inside a namespace with an IPC channel (fork through `ip netns exec`). */
const children = new Set<ChildProcess>();

function startIn(ns: string, name: string, args: string[]): ChildProcess {
  const child = fork(script(name), args, {
    execPath: 'ip',
    execArgv: ['netns', 'exec', ns, process.execPath],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  registerChild(child);
  children.add(child);
  return child;
}

function waitFor<K extends keyof Message & string>(child: ChildProcess, key: K, what: string, options?: WaitOptions<NonNullable<Message[K]>>): Promise<NonNullable<Message[K]>> {
  return waitForMessage<Message, K>(child, key, what, options);
}

/**
 * Waits until host-a's service (a `service a` process) holds `expected` open connections. The
 * clients' "connected" is not enough: their connect() completes with the handshake, and a loaded
 * host-a may not have accepted every socket yet; a migration started then would leave the
 * unaccepted ones behind. Rejects after `timeoutMs` with the counts host-a last reported.
 */
export async function waitForAccepted(hostA: ChildProcess, expected: number, timeoutMs = 30000): Promise<{ total: number; open: number }> {
  let last = { total: 0, open: 0 };
  const counted = waitFor(hostA, 'accepted', 'host-a accept count', {
    timeoutMs,
    until: (count) => {
      last = count;
      return count.open >= expected;
    },
    timeoutMessage: () =>
      `host-a holds ${last.open} of the ${expected} connections the clients made (${last.total} accepted) after ${timeoutMs} ms; ` +
      'not migrating: a connection it has not accepted would be left behind',
  });
  hostA.send({ cmd: 'count' });
  return counted;
}

function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${text}`);
}

function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
}

export interface DemoOptions {
  connections: number;
  streams: number;
  streamBytes: number;
  ipv6: boolean;
  /** Put the service address on a VXLAN overlay between the hosts (COAT's topology). */
  overlay?: 'vxlan';
  /** Traffic time before and after the move (ms). */
  settleMs: number;
  /** How long host-a may take to accept every client connection before the demo gives up (ms). */
  acceptTimeoutMs?: number;
  /**
   * More clients, started in the client namespace after the built-in ones are connected (e.g. a
   * third-party program). Each returns a function that ends it and says whether it went well.
   */
  extraClients?: Array<(topology: Topology, port: number) => Promise<() => Promise<ConnectionResult>>>;
}

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  if (process.getuid?.() !== 0) throw new Error('the demo builds network namespaces: run it as root');
  progress('building hosts (network namespaces client, host-a, host-b)…');
  const topology = await createTopology({ prefix: 'demo', ipv6: options.ipv6, ...(options.overlay ? { overlay: options.overlay } : {}) });
  try {
    const key = randomBytes(32).toString('hex');
    const control = { host: topology.hostB.underlay.ipv4, port: CONTROL_PORT };
    const listen = [topology.service.ipv4, ...(options.ipv6 && topology.service.ipv6 ? [topology.service.ipv6] : [])];
    const serviceConfig = JSON.stringify({ listen, port: SERVICE_PORT, control, key });
    const hostB = startIn(topology.hostB.ns, 'service', ['b', serviceConfig]);
    hostB.on('message', (m: Message) => m.log && process.stderr.write(`host-b: ${m.log}\n`));
    await waitFor(hostB, 'ready', 'host-b receiver');
    const hostA = startIn(topology.hostA.ns, 'service', ['a', serviceConfig]);
    await waitFor(hostA, 'ready', 'host-a service');
    progress(`connecting ${options.connections} clients…`);
    const client = startIn(topology.client.ns, 'client', [
      JSON.stringify({ addresses: listen, port: SERVICE_PORT, connections: options.connections, streams: options.streams, streamBytes: options.streamBytes, requestIntervalMs: 20 }),
    ]);
    // The client connects one by one: allow a loaded machine time in proportion to the count.
    await waitFor(client, 'connected', `${options.connections} clients to connect`, { timeoutMs: 30000 + 50 * options.connections });
    // The clients are connected; migrate only once host-a has accepted every one of them.
    await waitForAccepted(hostA, options.connections, options.acceptTimeoutMs);
    const extraFinishers = await Promise.all((options.extraClients ?? []).map((start) => start(topology, SERVICE_PORT)));
    const resetsBefore = await countAllResets(topology);
    progress('traffic flowing on host-a…');
    await new Promise((r) => setTimeout(r, options.settleMs));

    progress('migrating every connection to host-b…');
    let moveMs = 0;
    hostA.on('message', async (m: Message) => {
      if (!m.handover) return;
      try {
        moveMs = (await topology.moveServiceAddress('host-a', 'host-b')).total;
        hostA.send({ cmd: 'handover-done' });
      } catch (error) {
        hostA.send({ cmd: 'handover-failed', error: (error as Error).message });
      }
    });
    hostA.send({ cmd: 'migrate' });
    const migration = await waitFor(hostA, 'report', 'migration', { timeoutMs: 120000 });
    progress('traffic flowing on host-b…');
    await new Promise((r) => setTimeout(r, options.settleMs));
    // Resets of the move and the traffic after it; the clients' own close is counted apart (a
    // reset there breaks no stream: every byte was checked before it). At a 10,000-client close the
    // bench saw host-b answer duplicate ACKs of already closed connections (docs/bench.md).
    const resetsAfter = await countAllResets(topology);
    progress('checking every byte…');
    client.send({ cmd: 'finish' });
    const results = await waitFor(client, 'results', 'client results', { timeoutMs: 120000 });
    results.push(...(await Promise.all(extraFinishers.map((finish) => finish()))));
    const resetsAtEnd = await countAllResets(topology);
    progressDone();
    for (const child of [hostA, hostB]) child.send({ cmd: 'stop' });
    return {
      connections: options.connections,
      topology: options.overlay ?? 'bridge',
      migration: { ...migration, addressMoveMs: moveMs },
      results,
      resets: Object.fromEntries(Object.entries(resetsAfter).map(([ns, n]) => [ns, n - (resetsBefore[ns] ?? 0)])),
      resetsAtClose: Object.fromEntries(Object.entries(resetsAtEnd).map(([ns, n]) => [ns, n - (resetsAfter[ns] ?? 0)])),
    };
  } finally {
    progressDone();
    killChildren(children);
    topology.destroy();
  }
}

async function countAllResets(topology: Topology): Promise<Record<string, number>> {
  const roles = ['client', 'host-a', 'host-b'] as const;
  const counts = await Promise.all(roles.map((role) => topology.countResets(role)));
  return Object.fromEntries(roles.map((role, i) => [role, counts[i]!]));
}

export async function runDemoCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      connections: { type: 'string', default: '100' },
      streams: { type: 'string' },
      bytes: { type: 'string', default: String(4 * 1024 * 1024) },
      ipv6: { type: 'boolean', default: true },
      'no-ipv6': { type: 'boolean' },
      json: { type: 'boolean' },
      settle: { type: 'string', default: '1500' },
      overlay: { type: 'string' },
    },
  });
  const connections = Number(values.connections);
  const streams = values.streams === undefined ? Math.max(1, Math.floor(connections / 5)) : Number(values.streams);
  if (values.overlay !== undefined && values.overlay !== 'vxlan') throw new Error("--overlay takes 'vxlan'");
  if (!Number.isInteger(connections) || connections < 1 || !Number.isInteger(streams) || streams < 0 || streams > connections) {
    throw new Error('--connections must be a positive integer and --streams at most that');
  }
  const report = await runDemo({
    connections,
    streams,
    streamBytes: Number(values.bytes),
    ipv6: values['no-ipv6'] !== true,
    settleMs: Number(values.settle),
    ...(values.overlay === 'vxlan' ? { overlay: 'vxlan' as const } : {}),
  });
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report) + '\n');
  const failed = report.results.filter((r) => !r.ok).length;
  const resets = Object.values(report.resets).reduce((a, b) => a + b, 0);
  if (failed > 0 || resets > 0 || report.migration.moved !== report.connections) process.exitCode = 1;
}
