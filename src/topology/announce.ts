/**
 * Telling on-link neighbours that an address now lives at another MAC. Adding an address does
 * not do it by itself: measured on 6.18, neither arp_notify nor ndisc_notify sends anything on
 * address add (arp_notify acts on link up / MAC change; ndisc_notify's NA after DAD is skipped
 * for `nodad` addresses), and the client kept the old MAC.
 *
 * - IPv4: a gratuitous ARP request (`arping -U`, iputils-arping). Linux updates an existing
 *   entry from it whatever arp_accept says (arp_accept only governs creating entries).
 * - IPv6: a neighbour solicitation sent *from* the moved address with its link-layer option
 *   (`ndisc6 -s`): the solicited neighbour updates its entry for the source (RFC 4861 7.2.3)
 *   and answers. Plain Linux tools cannot send an unsolicited NA to all-nodes, so this targets
 *   each neighbour that talks to the address (in a topology: the client).
 */
import { CommandError, execIn, spawnIn, type RunResult } from './run.js';

/** arping sends its frame at once but then waits a full second before exiting (any -w). */
const ARPING_SEND_MS = 25;

export function announceIpv4(ns: string, device: string, address: string): Promise<void> {
  // -U: unsolicited (sender and target = address); -c 1: one frame is enough on a bridge.
  // Waiting for arping's exit would add its idle second to the address move: give it time to
  // send, then let it finish in the background.
  const child = spawnIn(ns, 'arping', ['-q', '-U', '-c', '1', '-I', device, address], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ARPING_SEND_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`arping exited with ${code}`));
    });
    child.unref();
  });
}

/** ndisc6's exit code when it sent its solicitations but no answer came back. */
const NDISC6_NO_ANSWER = 2;

export async function announceIpv6(ns: string, device: string, address: string, neighbour: string): Promise<RunResult | null> {
  // -1: stop at the first answer; -r 3 -w 100: up to three solicitations, 100 ms apart.
  try {
    return await execIn(ns, 'ndisc6', ['-q', '-1', '-r', '3', '-w', '100', '-s', address, neighbour, device]);
  } catch (error) {
    // The neighbour updates its entry from the solicitation itself (RFC 4861 7.2.3); a lost or
    // late answer does not undo that, and must not fail an address move that already happened
    // (seen in the soak under load: the move was then rolled back with the address on the
    // other host, and every connection was reset).
    if (error instanceof CommandError && error.exitCode === NDISC6_NO_ANSWER) return null;
    throw error;
  }
}
