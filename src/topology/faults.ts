/**
 * Faults and counters inside one namespace. This kernel has no netem, so loss is an nftables
 * rule with a random number per packet; resets are counted from the namespace's own SNMP
 * counters.
 */
import { execIn } from './run.js';

const LOSS_TABLE = 'tcp_repair_loss';

/** Which packets a loss rule drops: those arriving at the host, those leaving it, or both. */
export type LossDirection = 'in' | 'out' | 'both';

/**
 * Drops `percent` % of TCP packets entering and/or leaving namespace `ns` (replacing any loss set
 * before). Only TCP: ARP and neighbour discovery keep working, so the loss stays the TCP kind.
 */
export async function injectLoss(ns: string, percent: number, direction: LossDirection = 'both'): Promise<void> {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new RangeError(`loss percent must be an integer 0..100, got ${percent}`);
  // numgen yields 0..99 and nft refuses the always-true `< 100`: 100 % is a plain drop.
  const rule = percent === 100 ? 'meta l4proto tcp drop' : `meta l4proto tcp numgen random mod 100 < ${percent} drop`;
  const chains: string[] = [];
  if (direction !== 'out') chains.push(`add chain inet ${LOSS_TABLE} in { type filter hook input priority -10; }`, `add rule inet ${LOSS_TABLE} in ${rule}`);
  if (direction !== 'in') chains.push(`add chain inet ${LOSS_TABLE} out { type filter hook output priority -10; }`, `add rule inet ${LOSS_TABLE} out ${rule}`);
  // Adding then deleting the table first makes the script idempotent (delete of a missing table fails).
  const script = [`add table inet ${LOSS_TABLE}`, `delete table inet ${LOSS_TABLE}`, `add table inet ${LOSS_TABLE}`, ...chains].join('\n');
  await execIn(ns, 'nft', ['-f', '-'], { input: script + '\n' });
}

/** Removes the loss rules of injectLoss (no error if there were none). */
export async function clearLoss(ns: string): Promise<void> {
  await execIn(ns, 'nft', ['-f', '-'], { input: `add table inet ${LOSS_TABLE}\ndelete table inet ${LOSS_TABLE}\n` });
}

/**
 * TcpOutRsts of namespace `ns`: RST segments its stack sent. Not TcpEstabResets, which also
 * counts closing a repair-mode socket (a state change that sends nothing).
 */
export async function countResets(ns: string): Promise<number> {
  return (await tcpCounters(ns)).OutRsts ?? 0;
}

/** The `Tcp:` line of /proc/net/snmp as seen inside `ns` (/proc/net follows the reader's namespace). */
export async function tcpCounters(ns: string): Promise<Record<string, number>> {
  const { stdout } = await execIn(ns, 'cat', ['/proc/net/snmp']);
  const lines = stdout.split('\n').filter((line) => line.startsWith('Tcp:'));
  const [names, values] = lines.map((line) => line.split(/\s+/).slice(1));
  if (!names || !values) throw new Error('no Tcp: lines in /proc/net/snmp');
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
}

/**
 * Lets a host bind and listen on the service address before it owns it (Node servers cannot set
 * IP_FREEBIND). Measured on 6.18 for a repair-mode restore (bind to the service address, connect
 * to the client) on a host that does not own the address yet, no extra route or rule needed:
 * - IPv4: only IP_TRANSPARENT works. IP_FREEBIND or ip_nonlocal_bind let bind pass, but the
 *   repair-mode connect fails with ENETUNREACH; without any of them bind fails EADDRNOTAVAIL.
 * - IPv6: IPV6_TRANSPARENT, IPV6_FREEBIND and ip_nonlocal_bind all work.
 * So restore code should set IP_TRANSPARENT / IPV6_TRANSPARENT on the socket; this sysctl is for
 * plain listeners.
 */
export async function allowNonLocalBind(ns: string): Promise<void> {
  await execIn(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_nonlocal_bind=1', 'net.ipv6.ip_nonlocal_bind=1']);
}


const GUARD_TABLE = 'tcp_repair_rst_guard';

/**
 * Drops every TCP RST namespace `ns` would send from `addresses` (the service address). For the
 * destination of a move, while the move is in flight: if its receiver process dies after the
 * address arrived, its kernel would answer the clients' segments with RSTs (it no longer has
 * their sockets) until the address is handed back, and those RSTs would kill connections the
 * source is about to resume (seen in the fault tests: 3 of 8 runs). Dropped, they cost nothing.
 */
export async function guardResets(ns: string, addresses: readonly string[]): Promise<void> {
  const rules = addresses.map((a) => `add rule inet ${GUARD_TABLE} out ${a.includes(':') ? 'ip6' : 'ip'} saddr ${a} tcp flags & rst == rst drop`);
  const script = [`add table inet ${GUARD_TABLE}`, `delete table inet ${GUARD_TABLE}`, `add table inet ${GUARD_TABLE}`, `add chain inet ${GUARD_TABLE} out { type filter hook output priority -30; }`, ...rules];
  await execIn(ns, 'nft', ['-f', '-'], { input: script.join('\n') + '\n' });
}

/** Removes guardResets' rules (no error if there were none). */
export async function unguardResets(ns: string): Promise<void> {
  await execIn(ns, 'nft', ['-f', '-'], { input: `add table inet ${GUARD_TABLE}\ndelete table inet ${GUARD_TABLE}\n` });
}
