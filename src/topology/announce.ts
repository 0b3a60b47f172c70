/**
 * Telling on-link neighbours that an address now lives at another MAC. Adding an address does
 * not do it: measured on 6.18, with or without arp_notify / ndisc_notify, the client kept the old
 * host's MAC after `ip addr add` (arp_notify and ndisc_notify act on link events, and the NA
 * after DAD is skipped for `nodad` addresses). Two ways that work:
 *
 * - 'kernel' (default): with arp_notify=1 and ndisc_notify=1, setting the interface's MAC to the
 *   value it already has is a NETDEV_CHANGEADDR event, on which the kernel sends a gratuitous
 *   ARP and an unsolicited neighbour advertisement (all-nodes) for every address of the
 *   interface. One `ip` call (~3 ms), no extra tool, both families. Side effect: the host's own
 *   neighbour cache on that interface is flushed and its link-local address redoes DAD.
 * - 'tools': `arping -U` (iputils-arping) and `ndisc6 -s` (ndisc6). arping exits only one
 *   interval (1 s) after its single frame; ndisc6 sends a solicitation from the moved address to
 *   one neighbour, which updates its entry for the source (RFC 4861 7.2.3). For kernels where
 *   the first way stops working.
 */
import { CommandError, execIn, run, type RunResult } from './run.js';

/** How a moved address is announced: the kernel's own notifications (default), arping/ndisc6, or not at all. */
export type AnnounceMethod = 'kernel' | 'tools' | 'none';

/** The sysctls the 'kernel' method relies on; set in each host that may own the address. */
export const ANNOUNCE_SYSCTLS = ['net.ipv4.conf.all.arp_notify=1', 'net.ipv6.conf.all.ndisc_notify=1'] as const;

export async function announceByMacEvent(ns: string, device: string): Promise<void> {
  const { stdout } = await run('ip', ['-n', ns, '-br', 'link', 'show', 'dev', device]);
  const mac = stdout.trim().split(/\s+/)[2];
  if (!mac) throw new Error(`no MAC address for ${device} in ${ns}: ${stdout}`);
  await run('ip', ['-n', ns, 'link', 'set', 'dev', device, 'address', mac]);
}

export function announceIpv4WithArping(ns: string, device: string, address: string): Promise<RunResult> {
  // -U: unsolicited (sender and target = address); -c 1: one frame is enough on a bridge.
  return execIn(ns, 'arping', ['-q', '-U', '-c', '1', '-I', device, address]);
}

/** ndisc6's exit code when it sent its solicitations but no answer came back. */
const NDISC6_NO_ANSWER = 2;

export async function announceIpv6WithNdisc6(ns: string, device: string, address: string, neighbour: string): Promise<RunResult | null> {
  // -1: stop at the first answer; -r 1 -w 200: one solicitation, at most 200 ms of waiting.
  try {
    return await execIn(ns, 'ndisc6', ['-q', '-1', '-r', '1', '-w', '200', '-s', address, neighbour, device]);
  } catch (error) {
    // The neighbour updates its entry from the solicitation itself (RFC 4861 7.2.3); a lost or
    // late answer does not undo that, and must not fail an address move that already happened
    // (seen in the soak under load: the move was then rolled back with the address on the
    // other host, and every connection was reset).
    if (error instanceof CommandError && error.exitCode === NDISC6_NO_ANSWER) return null;
    throw error;
  }
}
