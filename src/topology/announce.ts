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
import { execIn, type RunResult } from './run.js';

export function announceIpv4(ns: string, device: string, address: string): Promise<RunResult> {
  // -U: unsolicited (sender and target = address); -c 1: one frame is enough on a bridge.
  return execIn(ns, 'arping', ['-q', '-U', '-c', '1', '-I', device, address]);
}

export function announceIpv6(ns: string, device: string, address: string, neighbour: string): Promise<RunResult> {
  // -1: stop at the first answer; -r 1 -w 200: one solicitation, at most 200 ms of waiting.
  return execIn(ns, 'ndisc6', ['-q', '-1', '-r', '1', '-w', '200', '-s', address, neighbour, device]);
}
