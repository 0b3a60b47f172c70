/**
 * The soak and fault-injection harness: three test hosts (network namespaces), a soak host
 * process on host-a and on host-b (each a receiver, either can migrate to the other), and a
 * client process with live keyed streams. It moves every connection between the hosts, moving
 * the service address with them, and verifies after each move and at the end that no byte was
 * lost, duplicated or changed in either direction and that no reset reached or left the client.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { hangGuardMs, waitForMessage, type ChildMessage } from '../child-ipc.js';
import { createTopology, type Topology } from '../topology/index.js';
import { killChildren, registerChild } from '../topology/cleanup.js';
import { execIn } from '../topology/run.js';
import type { HostRole } from '../topology/addresses.js';
import type { PhaseTimings } from '../migrate/migrate.js';
import { streamDigest } from './keystream.js';
import type { ConnectionStatus, Fault, NodeConfig } from './node.js';
import type { ClientConfig, ClientConnectionStatus } from './client.js';

export const SERVICE_PORT = 7000;
export const CONTROL_PORT = 7100;
const RST_TABLE = 'tcp_repair_rst_watch';

export interface HarnessOptions {
  connections: number;
  ipv6?: boolean;
  /** Bytes per write and write interval of every stream, both directions. */
  chunkBytes?: number;
  intervalMs?: number;
  prefix?: string;
  /** Receiver session timeout on both hosts (ms). */
  receiverTimeoutMs?: number;
  /** host-b restores without IP_TRANSPARENT (to test a destination without the address). */
  transparentB?: boolean;
  /** Command words put before `node` when starting a host process (e.g. setpriv …). */
  wrapHost?: (role: 'host-a' | 'host-b') => string[];
  /** Extra environment for the host processes. */
  hostEnv?: (role: 'host-a' | 'host-b') => NodeJS.ProcessEnv;
  /** Runs inside a host before its process starts (e.g. a repair helper). */
  beforeHost?: (topology: Topology, role: 'host-a' | 'host-b') => Promise<void>;
}

export interface MigrationOutcome {
  moved: number;
  stayed: string[];
  error?: { code: string; message: string };
  timings: PhaseTimings;
  held: number;
}

export interface MoveResult {
  from: HostRole;
  to: HostRole;
  outcome: MigrationOutcome;
  /** Service address move (ip del/add + announcement). */
  addressMoveMs: number;
  handedBack: boolean;
  /** Whole move as the driver saw it. */
  ms: number;
}

export interface Verification {
  ok: boolean;
  problems: string[];
  /** Payload bytes verified, both directions, all connections. */
  bytes: number;
}

interface Message extends ChildMessage {
  [key: string]: unknown;
}

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

export class SoakHarness {
  readonly key = randomBytes(32).toString('hex');
  readonly nodes = new Map<'host-a' | 'host-b', ChildProcess>();
  readonly pids = new Map<string, number>();
  client!: ChildProcess;
  /** Session errors the hosts reported (code or message). */
  readonly sessionErrors: Array<{ host: string; code?: string; message: string }> = [];
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(readonly topology: Topology, readonly options: Required<Pick<HarnessOptions, 'connections' | 'chunkBytes' | 'intervalMs'>> & HarnessOptions) {}

  static async create(options: HarnessOptions): Promise<SoakHarness> {
    const topology = await createTopology({ prefix: options.prefix ?? 'soak', ipv6: options.ipv6 ?? true });
    const harness = new SoakHarness(topology, { chunkBytes: 4096, intervalMs: 5, ...options });
    try {
      await harness.start();
    } catch (error) {
      harness.destroy();
      throw error;
    }
    return harness;
  }

  get owner(): 'host-a' | 'host-b' {
    return this.topology.owner as 'host-a' | 'host-b';
  }

  get other(): 'host-a' | 'host-b' {
    return this.owner === 'host-a' ? 'host-b' : 'host-a';
  }

  controlAddress(role: 'host-a' | 'host-b'): { host: string; port: number } {
    return { host: this.topology.hosts[role].underlay.ipv4, port: CONTROL_PORT };
  }

  private serviceAddresses(): string[] {
    const s = this.topology.service;
    return [s.ipv4, ...(s.ipv6 ? [s.ipv6] : [])];
  }

  private async start(): Promise<void> {
    await watchResets(this.topology.client.ns, SERVICE_PORT);
    for (const role of ['host-a', 'host-b'] as const) await this.startNode(role);
    const clientConfig: ClientConfig = {
      addresses: this.serviceAddresses(),
      port: SERVICE_PORT,
      connections: this.options.connections,
      chunkBytes: this.options.chunkBytes,
      intervalMs: this.options.intervalMs,
    };
    this.client = this.startIn(this.topology.client.ns, 'client', [JSON.stringify(clientConfig)]);
    const ready = (await waitFor(this.client, 'ready', 'soak client', 60000)) as { pid: number };
    this.pids.set('client', ready.pid);
  }

  /** Starts (or restarts, after a fault killed it) the soak host process of `role`. */
  async startNode(role: 'host-a' | 'host-b'): Promise<void> {
    await this.options.beforeHost?.(this.topology, role);
    const config: NodeConfig = {
      name: role,
      listen: role === 'host-a' ? this.serviceAddresses() : [],
      port: SERVICE_PORT,
      receiver: this.controlAddress(role),
      transparent: role === 'host-b' ? this.options.transparentB !== false : true,
      receiverTimeoutMs: this.options.receiverTimeoutMs ?? hangGuardMs(30000),
      chunkBytes: this.options.chunkBytes,
      intervalMs: this.options.intervalMs,
    };
    const env = { ...this.options.hostEnv?.(role), TCP_REPAIR_SOAK_KEY: this.key };
    const child = this.startIn(this.topology.hosts[role].ns, 'node', [JSON.stringify(config)], this.options.wrapHost?.(role) ?? [], env);
    child.on('message', (m: Message) => {
      if (m.event === 'sessionError') this.sessionErrors.push({ host: role, code: m.code as string | undefined, message: m.message as string });
    });
    this.nodes.set(role, child);
    const ready = (await waitFor(child, 'ready', `${role} soak host`, 60000)) as { pid: number };
    this.pids.set(role, ready.pid);
  }

  private startIn(ns: string, name: string, args: string[], wrap: string[] = [], env?: NodeJS.ProcessEnv): ChildProcess {
    const child = fork(script(name), args, {
      execPath: 'ip',
      execArgv: ['netns', 'exec', ns, ...wrap, process.execPath],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...env },
    });
    registerChild(child);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  node(role: 'host-a' | 'host-b'): ChildProcess {
    return this.nodes.get(role)!;
  }

  async setFault(role: 'host-a' | 'host-b', fault: Fault): Promise<void> {
    await request(this.node(role), { cmd: 'fault', fault }, 'faultSet');
  }

  async nodeStatus(role: 'host-a' | 'host-b'): Promise<{ connections: ConnectionStatus[]; held: number; fds: number }> {
    return (await request(this.node(role), { cmd: 'status' }, 'status')) as { connections: ConnectionStatus[]; held: number; fds: number };
  }

  async clientStatus(): Promise<ClientConnectionStatus[]> {
    return (await request(this.client, { cmd: 'status' }, 'status')) as ClientConnectionStatus[];
  }

  /**
   * Moves every connection from the host that owns the service address to the other one (or
   * `to`), moving the address in the hand-over. Faults are set beforehand with setFault().
   */
  async move(options: { handback?: boolean; timeoutMs?: number; key?: string; to?: { host: string; port: number }; beforeHandover?: () => Promise<void> } = {}): Promise<MoveResult> {
    const from = this.owner;
    const to = this.other;
    const source = this.node(from);
    const started = performance.now();
    let addressMoveMs = 0;
    let handedBack = false;
    const onMessage = async (m: Message) => {
      try {
        if (m.handover) {
          await options.beforeHandover?.();
          addressMoveMs = (await this.topology.moveServiceAddress(from, to)).total;
          source.send({ cmd: 'handover-done' });
        } else if (m.handback) {
          // Idempotent, as migrate() requires: the hand-over may not have moved it at all.
          if (this.topology.owner !== from) await this.topology.moveServiceAddress(to, from);
          handedBack = true;
          source.send({ cmd: 'handback-done' });
        }
      } catch (error) {
        source.send({ cmd: m.handback ? 'handback-failed' : 'handover-failed', error: (error as Error).message });
      }
    };
    source.on('message', onMessage);
    // Set up before the move, so the freeze does not pay for it; removed once it settled.
    await this.topology.guardResets(to, true);
    try {
      source.send({ cmd: 'migrate', to: options.to ?? this.controlAddress(to), key: options.key, handback: options.handback, timeoutMs: options.timeoutMs });
      const outcome = (await waitFor(source, 'migrated', `migration ${from} -> ${to}`, 120000)) as MigrationOutcome;
      return { from, to, outcome, addressMoveMs, handedBack, ms: performance.now() - started };
    } finally {
      source.off('message', onMessage);
      await this.topology.guardResets(to, false);
    }
  }

  /**
   * Waits until every connection carried new bytes in both directions since this call: the
   * proof that a move (or a rolled-back one) left each connection working.
   */
  async waitProgress(timeoutMs = 20000): Promise<void> {
    const start = await this.snapshot();
    const deadline = Date.now() + hangGuardMs(timeoutMs);
    for (;;) {
      const now = await this.snapshot();
      const stuck = [...start.keys()].filter((id) => {
        const a = start.get(id)!;
        const b = now.get(id);
        return !b || b.serverReceived <= a.serverReceived || b.clientReceived <= a.clientReceived;
      });
      if (stuck.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`no progress within ${timeoutMs} ms on connection(s) ${stuck.slice(0, 5).join(', ')}\n${await this.kernelView()}`);
      }
      await sleep(20);
    }
  }

  /**
   * The kernel's view of the service connections at both ends (`ss -tinoe`: state, timers, RTO,
   * backoff, retransmissions, windows), for the message of a stall: it tells a connection the
   * kernel gave up on from one waiting on a long retransmission timeout or a closed window.
   */
  private async kernelView(): Promise<string> {
    const ends: Array<[string, string]> = [['client', this.topology.client.ns], [this.owner, this.topology.hosts[this.owner].ns]];
    const sections = await Promise.all(ends.map(async ([role, ns]) => {
      const r = await execIn(ns, 'ss', ['-tinoeH', 'state', 'all', `( sport = :${SERVICE_PORT} or dport = :${SERVICE_PORT} )`]).catch((error: Error) => ({ stdout: `ss failed: ${error.message}` }));
      return `--- ${role} (ss -tinoe) ---\n${r.stdout.trim().slice(0, 6000)}`;
    }));
    return sections.join('\n');
  }

  private async snapshot(): Promise<Map<number, { serverReceived: number; clientReceived: number }>> {
    const [client, server] = await Promise.all([this.clientStatus(), this.nodeStatus(this.owner)]);
    const byId = new Map(server.connections.map((c) => [c.id, c]));
    return new Map(client.map((c) => [c.id, { serverReceived: byId.get(c.id)?.received ?? -1, clientReceived: c.received }]));
  }

  /** RSTs to or from the service port seen in the client namespace since the start. */
  resets(): Promise<{ in: number; out: number }> {
    return readResets(this.topology.client.ns);
  }

  /**
   * Stops all traffic, waits until both ends agree on every byte count, and checks every
   * connection: no mismatch at either end, counts equal both ways, and the sha256 of each
   * direction as the client saw it equal to the digest of the stream computed here.
   */
  async verifyAll(timeoutMs = 30000): Promise<Verification> {
    await request(this.client, { cmd: 'quiesce' }, 'quiesced');
    await request(this.node(this.owner), { cmd: 'quiesce' }, 'quiesced');
    const deadline = Date.now() + hangGuardMs(timeoutMs);
    let problems: string[] = [];
    let final: ClientConnectionStatus[] = [];
    let server: ConnectionStatus[] = [];
    for (;;) {
      final = (await request(this.client, { cmd: 'final' }, 'final')) as ClientConnectionStatus[];
      server = (await this.nodeStatus(this.owner)).connections;
      problems = compare(final, server);
      if (problems.length === 0 || Date.now() > deadline) break;
      await sleep(50);
    }
    let bytes = 0;
    if (problems.length === 0) {
      for (const c of final) {
        const key = Buffer.from(c.key, 'hex');
        if (streamDigest(key, 0, c.sent) !== c.sentDigest) problems.push(`connection ${c.id}: sent digest differs from the stream`);
        if (streamDigest(key, 1, c.received) !== c.receivedDigest) problems.push(`connection ${c.id}: received digest differs from the server's stream`);
        bytes += c.sent + c.received;
      }
    }
    return { ok: problems.length === 0, problems, bytes };
  }

  /** Kills every process and removes the hosts. Synchronous and idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.exits = [...this.children].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    }));
    killChildren(this.children);
    this.topology.destroy();
  }

  /** destroy(), then waits until every process it started has really exited (and its pipes closed). */
  async close(): Promise<void> {
    this.destroy();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.exits), new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
  }

  private exits: Promise<void>[] = [];
}

function compare(client: ClientConnectionStatus[], server: ConnectionStatus[]): string[] {
  const problems: string[] = [];
  const byId = new Map(server.map((c) => [c.id, c]));
  for (const c of client) {
    const s = byId.get(c.id);
    if (c.error || c.closed) problems.push(`connection ${c.id}: client saw ${c.error ?? 'a close'}`);
    if (!s) {
      problems.push(`connection ${c.id}: not served by the host that owns the address`);
      continue;
    }
    if (c.firstBad >= 0) problems.push(`connection ${c.id}: client received a wrong byte at offset ${c.firstBad}`);
    if (s.firstBad >= 0) problems.push(`connection ${c.id}: server received a wrong byte at offset ${s.firstBad}`);
    if (s.received !== c.sent) problems.push(`connection ${c.id}: client sent ${c.sent}, server received ${s.received}`);
    if (c.received !== s.sent) problems.push(`connection ${c.id}: server sent ${s.sent}, client received ${c.received}`);
  }
  return problems;
}

/** Counts RST segments to and from `port` in namespace `ns` (before any loss rule drops them). */
async function watchResets(ns: string, port: number): Promise<void> {
  const script = [
    `add table inet ${RST_TABLE}`,
    `add chain inet ${RST_TABLE} in { type filter hook input priority -20; }`,
    `add chain inet ${RST_TABLE} out { type filter hook output priority -20; }`,
    `add rule inet ${RST_TABLE} in tcp sport ${port} tcp flags & rst == rst counter`,
    `add rule inet ${RST_TABLE} out tcp dport ${port} tcp flags & rst == rst counter`,
  ].join('\n');
  await execIn(ns, 'nft', ['-f', '-'], { input: script + '\n' });
}

async function readResets(ns: string): Promise<{ in: number; out: number }> {
  const { stdout } = await execIn(ns, 'nft', ['-j', 'list', 'table', 'inet', RST_TABLE]);
  const counts: Record<string, number> = {};
  for (const item of (JSON.parse(stdout) as { nftables: Array<{ rule?: { chain: string; expr: Array<{ counter?: { packets: number } }> } }> }).nftables) {
    const counter = item.rule?.expr.find((e) => e.counter)?.counter;
    if (item.rule && counter) counts[item.rule.chain] = counter.packets;
  }
  return { in: counts.in ?? 0, out: counts.out ?? 0 };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for a message carrying `key` from `child`; fails on its exit or a fatal report. */
export function waitFor(child: ChildProcess, key: string, what: string, timeoutMs = 30000): Promise<unknown> {
  return waitForMessage<Message, string>(child, key, what, { timeoutMs });
}

export function request(child: ChildProcess, message: unknown, key: string, timeoutMs = 30000): Promise<unknown> {
  const answer = waitFor(child, key, `${JSON.stringify(message)} answer`, timeoutMs);
  child.send(message as object);
  return answer;
}
