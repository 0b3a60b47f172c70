/**
 * Test and demo hosts as network namespaces: client, host-a and host-b, each with one veth into
 * a bridge that lives in a fourth "switch" namespace (so the root namespace is never touched),
 * and a service address that starts on host-a and can move to host-b.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import {
  HOST_INTERFACE, HOST_ROLES, OVERLAY, OVERLAY_INTERFACE, OVERLAY_PORT, OVERLAY_SERVICE, OVERLAY_VNI, SERVICE, UNDERLAY, UNDERLAY_PREFIX,
  type AddressPair, type HostRole,
} from './addresses.js';
import { ANNOUNCE_SYSCTLS, announceByMacEvent, announceIpv4WithArping, announceIpv6WithNdisc6, type AnnounceMethod } from './announce.js';
import { deleteNamespacesSync, killChildren, registerChild, registerNamespace, sweepStale, unregisterNamespace } from './cleanup.js';
import { allowNonLocalBind, clearLoss, countResets, guardResets, injectLoss, unguardResets, type LossDirection } from './faults.js';
import { execIn, ipBatch, run, spawnIn, type RunOptions, type RunResult } from './run.js';

/** Options of {@link createTopology}. */
export interface TopologyOptions {
  /** Lowercase letters and digits; namespaces are `${prefix}-${pid}-${counter}-${role}`. */
  prefix?: string;
  /** Also give every host and the service an IPv6 address (default true). */
  ipv6?: boolean;
  /**
   * 'vxlan': every host also joins a VXLAN segment over the underlay, and the service address
   * lives there (198.19.0.100, fd01::100) instead of on the underlay. Default: none.
   */
  overlay?: 'vxlan';
}

/** One host of a topology: its role, its network namespace and its addresses. */
export interface Host {
  role: HostRole;
  /** The network namespace name, for `ip netns exec`. */
  ns: string;
  underlay: AddressPair;
  /** Present in the VXLAN variant. */
  overlay?: AddressPair;
}

/** A host given by its role ('host-a') or as the {@link Host} object. */
export type HostRef = HostRole | Host;

/** Milliseconds spent in each step of a service-address move (spawning the tools included). */
export interface MoveTimings {
  remove: number;
  add: number;
  announce: number;
  total: number;
}

let counter = 0;
const sweptPrefixes = new Set<string>();

/**
 * Builds the hosts (client, host-a, host-b as network namespaces on a bridge, with the service
 * address on host-a). Call `destroy()` when done; the namespaces are also removed at process exit.
 */
export async function createTopology(options: TopologyOptions = {}): Promise<Topology> {
  const prefix = options.prefix ?? 'tcprepair';
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) throw new TypeError(`topology prefix must be lowercase letters and digits, got ${JSON.stringify(prefix)}`);
  // Leftovers of a SIGKILLed earlier run with this prefix go first (one `ip netns list`).
  if (!sweptPrefixes.has(prefix)) {
    sweptPrefixes.add(prefix);
    await sweepStale(prefix);
  }
  const topology = new Topology(`${prefix}-${process.pid}-${++counter}`, options.ipv6 ?? true, options.overlay === 'vxlan');
  try {
    await topology.build();
  } catch (error) {
    topology.destroy();
    throw error;
  }
  return topology;
}

/** A built set of test hosts: run commands in them, move the service address, inject loss, count resets. */
export class Topology {
  readonly id: string;
  readonly ipv6: boolean;
  readonly switchNs: string;
  readonly hosts: Readonly<Record<HostRole, Host>>;
  /** The moving address (and the host that holds it now). */
  readonly service: AddressPair;
  /** The interface that carries the service address: eth0, or vx0 in the overlay variant. */
  readonly serviceDevice: string;
  readonly overlay: boolean;
  private serviceOwner: HostRole = 'host-a';
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  constructor(id: string, ipv6: boolean, overlay = false) {
    this.id = id;
    this.ipv6 = ipv6;
    this.overlay = overlay;
    this.switchNs = `${id}-switch`;
    const pick = (pair: { ipv4: string; ipv6: string }): AddressPair => (ipv6 ? { ...pair } : { ipv4: pair.ipv4 });
    const host = (role: HostRole): Host => ({
      role,
      ns: `${id}-${role}`,
      underlay: pick(UNDERLAY[role]),
      ...(overlay ? { overlay: pick(OVERLAY[role]) } : {}),
    });
    this.hosts = { client: host('client'), 'host-a': host('host-a'), 'host-b': host('host-b') };
    this.service = pick(overlay ? OVERLAY_SERVICE : SERVICE);
    this.serviceDevice = overlay ? OVERLAY_INTERFACE : HOST_INTERFACE;
  }

  /** The client host. */
  get client(): Host { return this.hosts.client; }
  /** The host the service starts on. */
  get hostA(): Host { return this.hosts['host-a']; }
  /** The host the service moves to. */
  get hostB(): Host { return this.hosts['host-b']; }
  /** The host that holds the service address now. */
  get owner(): HostRole { return this.serviceOwner; }
  /** Every namespace of the topology, the switch's included. */
  get namespaces(): string[] { return [this.switchNs, ...HOST_ROLES.map((role) => this.hosts[role].ns)]; }

  /** The {@link Host} for a role (or the host itself). */
  host(ref: HostRef): Host {
    return typeof ref === 'string' ? this.hosts[ref] : ref;
  }

  /** @internal Called once by createTopology. */
  async build(): Promise<void> {
    // Registered before creation: a crash halfway through still deletes what exists.
    for (const ns of this.namespaces) registerNamespace(ns);
    await ipBatch(null, this.namespaces.map((ns) => `netns add ${ns}`));
    // No multicast snooping: without a querier it could swallow neighbour solicitations.
    await ipBatch(this.switchNs, ['link set lo up', 'link add br0 type bridge mcast_snooping 0', 'link set br0 up']);
    await Promise.all([
      ...HOST_ROLES.map((role) => this.buildHost(this.hosts[role])),
      // Servers announce the service address when it arrives: see announce.ts.
      execIn(this.hostA.ns, 'sysctl', ['-q', '-w', ...ANNOUNCE_SYSCTLS]),
      execIn(this.hostB.ns, 'sysctl', ['-q', '-w', ...ANNOUNCE_SYSCTLS]),
    ]);
    await ipBatch(this.switchNs, HOST_ROLES.flatMap((role) => [`link set dev port-${role} master br0`, `link set dev port-${role} up`]));
    if (this.overlay) await Promise.all(HOST_ROLES.map((role) => this.buildOverlay(this.hosts[role])));
    await ipBatch(this.hostA.ns, this.serviceLines('add'));
  }

  /**
   * One VXLAN device per host, sourced from its underlay IPv4 address, with head-end
   * replication: an all-zero FDB entry per peer floods broadcast and unknown unicast (ARP, ND) to
   * every other host, and MAC learning does the rest, so a moved address is found through the
   * tunnel just as on the bridge.
   */
  private async buildOverlay(host: Host): Promise<void> {
    const overlay = host.overlay!;
    const lines = [
      `link add ${OVERLAY_INTERFACE} type vxlan id ${OVERLAY_VNI} local ${host.underlay.ipv4} dstport ${OVERLAY_PORT} dev ${HOST_INTERFACE}`,
      `link set dev ${OVERLAY_INTERFACE} up`,
      `addr add ${overlay.ipv4}/24 dev ${OVERLAY_INTERFACE}`,
    ];
    if (overlay.ipv6) lines.push(`addr add ${overlay.ipv6}/64 dev ${OVERLAY_INTERFACE} nodad`);
    await ipBatch(host.ns, lines);
    const peers = HOST_ROLES.filter((role) => role !== host.role).map((role) => this.hosts[role].underlay.ipv4);
    await run('bridge', ['-n', host.ns, '-batch', '-'], {
      input: peers.map((peer) => `fdb append 00:00:00:00:00:00 dev ${OVERLAY_INTERFACE} dst ${peer}`).join('\n') + '\n',
    });
  }

  private async buildHost(host: Host): Promise<void> {
    const lines = [
      'link set lo up',
      `link add ${HOST_INTERFACE} type veth peer name port-${host.role} netns ${this.switchNs}`,
      `link set dev ${HOST_INTERFACE} up`,
      `addr add ${host.underlay.ipv4}/${UNDERLAY_PREFIX.ipv4} dev ${HOST_INTERFACE}`,
    ];
    // nodad: usable at once instead of "tentative" for a second.
    if (host.underlay.ipv6) lines.push(`addr add ${host.underlay.ipv6}/${UNDERLAY_PREFIX.ipv6} dev ${HOST_INTERFACE} nodad`);
    await ipBatch(host.ns, lines);
  }

  private serviceLines(verb: 'add' | 'del'): string[] {
    const device = this.serviceDevice;
    const lines = [`addr ${verb} ${this.service.ipv4}/32 dev ${device}`];
    if (this.service.ipv6) lines.push(`addr ${verb} ${this.service.ipv6}/128 dev ${device}${verb === 'add' ? ' nodad' : ''}`);
    return lines;
  }

  /** Runs a command to completion inside a host (or any namespace name). */
  exec(where: HostRef | string, cmd: string, args: readonly string[] = [], options?: RunOptions): Promise<RunResult> {
    return execIn(this.nsOf(where), cmd, args, options);
  }

  /** Starts a long-running command inside a host; killed by destroy() if still running. */
  spawnIn(where: HostRef | string, cmd: string, args: readonly string[] = [], options?: SpawnOptions): ChildProcess {
    const child = spawnIn(this.nsOf(where), cmd, args, options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    registerChild(child);
    return child;
  }

  private nsOf(where: HostRef | string): string {
    if (typeof where === 'string') return where in this.hosts ? this.hosts[where as HostRole].ns : where;
    return where.ns;
  }

  /**
   * Moves the service address: removes it from `from`, adds it to `to`, then announces it
   * (see announce.ts) so the client's neighbour entry points at `to` at once, instead of after
   * its entry for the old MAC fails (FACTS: ~97 s without an announcement).
   */
  async moveServiceAddress(from: HostRef, to: HostRef, options: { announce?: AnnounceMethod } = {}): Promise<MoveTimings> {
    const source = this.host(from);
    const target = this.host(to);
    if (source.role !== this.serviceOwner) throw new Error(`service address is on ${this.serviceOwner}, not ${source.role}`);
    if (source.role === target.role) throw new Error('cannot move the service address to the host that has it');
    const started = performance.now();
    const remove = (await ipBatch(source.ns, this.serviceLines('del'))).ms;
    const add = (await ipBatch(target.ns, this.serviceLines('add'))).ms;
    this.serviceOwner = target.role;
    const announceStarted = performance.now();
    await this.announce(target, options.announce ?? 'kernel');
    const announce = performance.now() - announceStarted;
    return { remove, add, announce, total: performance.now() - started };
  }

  private async announce(target: Host, method: AnnounceMethod): Promise<void> {
    if (method === 'none') return;
    if (method === 'kernel') return announceByMacEvent(target.ns, this.serviceDevice);
    const jobs: Promise<unknown>[] = [announceIpv4WithArping(target.ns, this.serviceDevice, this.service.ipv4)];
    const clientAddress = (this.client.overlay ?? this.client.underlay).ipv6;
    if (this.service.ipv6 && clientAddress) {
      jobs.push(announceIpv6WithNdisc6(target.ns, this.serviceDevice, this.service.ipv6, clientAddress));
    }
    await Promise.all(jobs);
  }

  /** Drops `percent` % of the host's TCP packets (nftables, inside its namespace). */
  injectLoss(where: HostRef, percent: number, direction?: LossDirection): Promise<void> {
    return injectLoss(this.host(where).ns, percent, direction);
  }

  /** Removes what {@link Topology.injectLoss} added. */
  clearLoss(where: HostRef): Promise<void> {
    return clearLoss(this.host(where).ns);
  }

  /**
   * While on, the host sends no RST from the service address (see guardResets): set it on a
   * move's destination for the time of the move, so a receiver dying after the hand-over
   * cannot reset the connections before the address is handed back.
   */
  guardResets(where: HostRef, on: boolean): Promise<void> {
    const ns = this.host(where).ns;
    if (!on) return unguardResets(ns);
    return guardResets(ns, [this.service.ipv4, ...(this.service.ipv6 ? [this.service.ipv6] : [])]);
  }

  /** RST segments the host's stack has sent (TcpOutRsts): compare before and after. */
  countResets(where: HostRef): Promise<number> {
    return countResets(this.host(where).ns);
  }

  /**
   * Readies a host to take over the service address before it owns it: lets listeners bind it
   * (ip_nonlocal_bind). Restored repair-mode sockets need IP_TRANSPARENT on the socket, not this
   * (see allowNonLocalBind for what was measured).
   */
  prepareToReceive(where: HostRef): Promise<void> {
    return allowNonLocalBind(this.host(where).ns);
  }

  /** A host's neighbour entry (on the service interface) for an address, e.g. `{ lladdr: '6a:…', state: 'REACHABLE' }`. */
  async neighbour(where: HostRef, address: string): Promise<{ lladdr?: string; state: string } | null> {
    const { stdout } = await run('ip', ['-n', this.host(where).ns, 'neigh', 'show', address, 'dev', this.serviceDevice]);
    const line = stdout.trim();
    if (!line) return null;
    const lladdr = /lladdr (\S+)/.exec(line)?.[1];
    const state = line.split(/\s+/).at(-1) ?? 'UNKNOWN';
    return lladdr ? { lladdr, state } : { state };
  }

  /** The MAC address of a host's service interface (eth0, or vx0 in the overlay variant). */
  async macAddress(where: HostRef): Promise<string> {
    const { stdout } = await run('ip', ['-n', this.host(where).ns, '-br', 'link', 'show', 'dev', this.serviceDevice]);
    const mac = stdout.trim().split(/\s+/)[2];
    if (!mac) throw new Error(`no MAC address in: ${stdout}`);
    return mac;
  }

  /**
   * Removes every namespace (and with them the veths and the bridge) and kills the commands
   * started with spawnIn. Synchronous and idempotent, so it is safe in finally blocks, teardown
   * hooks and exit handlers alike.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    killChildren([...this.children]);
    this.children.clear();
    deleteNamespacesSync(this.namespaces);
    for (const ns of this.namespaces) unregisterNamespace(ns);
  }
}
