/**
 * The ground of the cross-kernel move test: a bridge (in its own namespace), a client namespace
 * and host namespaces on the host kernel, and qemu guests (Debian 6.1, 6.12; TCG) whose tap NICs
 * join the same bridge. Every host runs test/kernels/fixtures/agent.mjs, driven from here
 * through a hub (fixtures/hub.mjs) in the bridge's namespace, since this process stays in the
 * root namespace. Addresses: 198.18.0.0/24 only (see src/topology/addresses.ts).
 *
 * Cleanup: namespaces (with their veths and the bridge) and the processes in them go with
 * Topology.destroy() and the topology's exit hooks; guests are aborted (qemu and virtiofsd
 * SIGKILLed by vm.mjs) by close() and by a signal-exit hook; their taps are qemu's own
 * (non-persistent) and vanish with it.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { onExit } from 'signal-exit';
import { createTopology, run, type Topology } from '../../dist/esm/topology/index.js';
// @ts-ignore: plain ESM scripts of the kernel matrix (typed by their .d.mts)
import { ensureKernel } from '../../scripts/kernels/kernels.mjs';
// @ts-ignore
import { bootVm, QEMU, VIRTIOFSD } from '../../scripts/kernels/vm.mjs';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const HUB = { address: '198.18.0.250', port: 7000 };
export const SERVICE_ADDRESS = '198.18.0.100';
/** The guests' addresses on the bridge, by kernel name. */
export const GUEST_ADDRESS: Record<string, string> = { '6.1': '198.18.0.11', '6.12': '198.18.0.12' };

export interface VmResultLike {
  exitCode: number | null;
  output: string;
  console: string;
  bootMs: number | null;
  totalMs: number;
  timedOut: boolean;
}

/** A host of the matrix: a namespace on the host kernel or a guest. */
export interface Agent {
  name: string;
  kernel: string;
  /** Its address on the bridge. */
  address: string;
  guest: boolean;
  /** Namespace name (host agents only). */
  ns?: string;
}

type Reply = { resolve: (value: any) => void; reject: (error: Error) => void };

/** qemu, virtiofsd and busybox-static via the matrix's deps script; fails loudly if still missing. */
export function ensureQemu(): void {
  const missing = () => !existsSync(VIRTIOFSD) || spawnFails(QEMU);
  if (missing()) execFileSync('bash', [`${ROOT}/scripts/kernels/deps.sh`], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (missing()) throw new Error(`qemu (${QEMU}) or virtiofsd (${VIRTIOFSD}) missing after scripts/kernels/deps.sh`);
}

function spawnFails(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}

export class CrossRig {
  topology!: Topology;
  readonly agents = new Map<string, Agent>();
  readonly guests = new Map<string, { controller: AbortController; done: Promise<VmResultLike>; tap: string; bootMs?: number }>();
  readonly events: Array<Record<string, any>> = [];
  private hub!: ChildProcess;
  private readonly replies = new Map<string, Reply>();
  private readonly waiters = new Set<(msg: Record<string, any>) => boolean>();
  /** Answers agents' requests (`ask`), e.g. the service address hand-over during a migration. */
  onAsk: (from: string, msg: Record<string, any>) => Promise<unknown> = async () => { throw new Error('no ask handler'); };
  private seq = 0;
  private removeExitHook: (() => void) | null = null;
  log: (line: string) => void = () => {};

  async start(): Promise<void> {
    this.removeExitHook = onExit(() => this.abortGuests());
    this.topology = await createTopology({ prefix: 'xkern', ipv6: false });
    const { topology } = this;
    // The topology puts the service address on host-a; each pair puts it where it starts.
    await run('ip', ['-n', topology.hostA.ns, 'addr', 'del', `${SERVICE_ADDRESS}/32`, 'dev', 'eth0']);
    await run('ip', ['-n', topology.switchNs, 'addr', 'add', `${HUB.address}/24`, 'dev', 'br0']);
    // Resets seen by the client, both ways, counted by nftables in its namespace.
    await topology.exec('client', 'nft', ['-f', '-'], {
      input: [
        'add table inet xk_rst',
        'add chain inet xk_rst in { type filter hook input priority 0; }',
        'add chain inet xk_rst out { type filter hook output priority 0; }',
        'add rule inet xk_rst in tcp flags & rst == rst counter',
        'add rule inet xk_rst out tcp flags & rst == rst counter',
      ].join('\n') + '\n',
    });
    this.hub = topology.spawnIn(topology.switchNs, process.execPath, [`${FIXTURES}hub.mjs`, HUB.address, String(HUB.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buffer = '';
    this.hub.stdout!.setEncoding('utf8');
    this.hub.stdout!.on('data', (d: string) => {
      buffer += d;
      let nl;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim()) this.onLine(JSON.parse(line));
      }
    });
    this.hub.stderr!.on('data', (d) => this.log(`[hub] ${d}`));
    await this.waitFor((m) => m.from === 'hub' && m.event === 'listening', 10_000, 'hub listening');
  }

  private onLine(msg: Record<string, any>): void {
    if (msg.event === 'noAgent' && msg.id !== undefined) {
      const r = this.replies.get(msg.id);
      this.replies.delete(msg.id);
      r?.reject(new Error(`no agent ${msg.to} at the hub`));
      return;
    }
    if (msg.id !== undefined && this.replies.has(msg.id)) {
      const r = this.replies.get(msg.id)!;
      this.replies.delete(msg.id);
      if (msg.error) r.reject(new Error(`${msg.from}: ${msg.error}`));
      else r.resolve(msg.result);
      return;
    }
    if (msg.ask) {
      this.onAsk(msg.from, msg).then(
        (result) => this.send(msg.from, { answer: msg.ask, result }),
        (error: Error) => this.send(msg.from, { answer: msg.ask, error: error.message }),
      );
      return;
    }
    const event = { at: Date.now(), ...msg };
    this.events.push(event);
    this.log(`[${msg.from}] ${JSON.stringify(msg)}`);
    for (const w of this.waiters) if (w(event)) this.waiters.delete(w);
  }

  private send(to: string, msg: Record<string, unknown>): void {
    this.hub.stdin!.write(`${JSON.stringify({ to, msg })}\n`);
  }

  /** Resolves with the first event (from now on, or already seen) matching `test`. */
  waitFor(test: (msg: Record<string, any>) => boolean, ms: number, what: string): Promise<Record<string, any>> {
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      timer.unref();
      const w = (msg: Record<string, any>) => {
        if (!test(msg)) return false;
        clearTimeout(timer);
        resolve(msg);
        return true;
      };
      this.waiters.add(w);
    });
  }

  /** Sends a command to an agent and resolves with its answer. */
  call<T = any>(agent: string, cmd: string, args: Record<string, unknown> = {}, ms = 60_000): Promise<T> {
    const id = `c${++this.seq}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(new Error(`${agent} ${cmd}: no answer within ${ms} ms`));
      }, ms);
      this.replies.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.send(agent, { id, cmd, ...args });
    });
  }

  /** Starts an agent in one of the topology's host namespaces (host kernel). */
  async startHostAgent(role: 'host-a' | 'host-b'): Promise<Agent> {
    const host = this.topology.host(role);
    const child = this.topology.spawnIn(role, process.execPath, [`${FIXTURES}agent.mjs`, role, HUB.address, String(HUB.port), 'eth0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d) => this.log(`[${role} stderr] ${d}`));
    const hello = await this.waitFor((m) => m.from === role && m.event === 'hello', 20_000, `${role} agent`);
    const agent: Agent = { name: role, kernel: hello.kernel, address: host.underlay.ipv4, guest: false, ns: host.ns };
    this.agents.set(role, agent);
    return agent;
  }

  /**
   * Boots a guest on `kernelName` with its agent. qemu creates the tap in the root namespace
   * (vm.mjs opens it by name); as soon as it exists it moves into the bridge's namespace.
   */
  async startGuest(kernelName: string, index: number): Promise<Agent> {
    const name = `guest-${kernelName}`;
    const kernel = ensureKernel(kernelName);
    const tap = `xk${process.pid % 100000}g${index}`;
    const address = GUEST_ADDRESS[kernelName]!;
    const controller = new AbortController();
    const command = [
      'ip link set eth0 up',
      `ip addr add ${address}/24 dev eth0`,
      'sysctl -qw net.ipv4.conf.all.arp_notify=1',
      `exec ${process.execPath} ${FIXTURES}agent.mjs ${name} ${HUB.address} ${HUB.port} eth0`,
    ].join(' && ');
    const started = Date.now();
    const done: Promise<VmResultLike> = bootVm({
      kernel, command, cwd: ROOT, memoryMiB: 1024, cpus: 1, timeoutMs: 15 * 60_000,
      tap: { ifname: tap, mac: `52:54:00:18:00:${(0x10 + index).toString(16)}` },
      signal: controller.signal,
      onOutput: (text: string) => this.log(`[${name} out] ${text.trimEnd()}`),
    });
    const entry = { controller, done, tap, bootMs: undefined as number | undefined };
    this.guests.set(name, entry);
    const failed = done.then((r) => { throw new Error(`guest ${name} ended (exit ${r.exitCode}, timedOut ${r.timedOut}): ${r.output.slice(-2000)}\n${r.console.slice(-3000)}`); });
    failed.catch(() => {});
    // Tap into the bridge as soon as qemu has created it.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const exists = await run('ip', ['link', 'show', 'dev', tap]).then(() => true, () => false);
      if (exists) break;
      if (Date.now() > deadline) throw new Error(`qemu did not create tap ${tap}`);
      await Promise.race([new Promise((r) => setTimeout(r, 50)), failed]);
    }
    await run('ip', ['link', 'set', 'dev', tap, 'netns', this.topology.switchNs]);
    await run('ip', ['-n', this.topology.switchNs, 'link', 'set', 'dev', tap, 'master', 'br0']);
    await run('ip', ['-n', this.topology.switchNs, 'link', 'set', 'dev', tap, 'up']);
    const hello = await Promise.race([this.waitFor((m) => m.from === name && m.event === 'hello', 120_000, `${name} agent`), failed]);
    entry.bootMs = Date.now() - started;
    const agent: Agent = { name, kernel: hello.kernel, address, guest: true };
    this.agents.set(name, agent);
    return agent;
  }

  /** The client's RST counters (nftables, both directions). */
  async clientResets(): Promise<{ in: number; out: number }> {
    const { stdout } = await this.topology.exec('client', 'nft', ['list', 'table', 'inet', 'xk_rst']);
    const counts = [...stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
    return { in: counts[0] ?? NaN, out: counts[1] ?? NaN };
  }

  private abortGuests(): void {
    for (const g of this.guests.values()) g.controller.abort();
  }

  /** Stops the guests (waits for qemu to be gone) and removes the namespaces. Idempotent. */
  async close(): Promise<void> {
    this.abortGuests();
    await Promise.all([...this.guests.values()].map((g) => g.done.catch(() => {})));
    this.topology?.destroy();
    this.removeExitHook?.();
    this.removeExitHook = null;
  }
}
