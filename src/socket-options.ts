/**
 * Reading the options an application may have set, and putting them back on a restored socket.
 * Both go through src/batch.ts: the integer options are read in one native call and written in
 * the same batch as the restore's other options.
 */
import * as ll from './lowlevel.js';
import { C, type IntWrites } from './batch.js';
import type { Family } from './native-types.js';
import type { SocketOptionsImage } from './image.js';

/** The integer options an image keeps, in the order `socketOptionsFrom` expects their values. */
export function socketOptionSpec(family: Family): Array<[number, number]> {
  return [
    [C.SOL_TCP, C.TCP_NODELAY!],
    [C.SOL_SOCKET, C.SO_KEEPALIVE!],
    [C.SOL_TCP, C.TCP_KEEPIDLE!],
    [C.SOL_TCP, C.TCP_KEEPINTVL!],
    [C.SOL_TCP, C.TCP_KEEPCNT!],
    [C.SOL_TCP, C.TCP_USER_TIMEOUT!],
    [C.SOL_SOCKET, C.SO_SNDBUF!],
    [C.SOL_SOCKET, C.SO_RCVBUF!],
    family === 4 ? [C.IPPROTO_IP, C.IP_TOS!] : [C.IPPROTO_IPV6, C.IPV6_TCLASS!],
    family === 4 ? [C.IPPROTO_IP, C.IP_TTL!] : [C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS!],
    [C.SOL_SOCKET, C.SO_PRIORITY!],
    [C.SOL_SOCKET, C.SO_MARK!],
    [C.SOL_TCP, C.TCP_NOTSENT_LOWAT!],
  ];
}

/**
 * The image's socket options from the values read with `socketOptionSpec` (starting at `at`).
 * SO_REUSEADDR is passed in: it must be read before repair mode, which forces it on (reads 2).
 */
export function socketOptionsFrom(v: Int32Array, at: number, reuseAddress: boolean, congestion: string): SocketOptionsImage {
  return {
    noDelay: v[at]! !== 0,
    keepAlive: v[at + 1]! !== 0,
    keepIdle: v[at + 2]!,
    keepInterval: v[at + 3]!,
    keepCount: v[at + 4]!,
    userTimeout: v[at + 5]!,
    // The kernel reports twice what was set (it doubles for bookkeeping overhead).
    sendBuffer: v[at + 6]!,
    receiveBuffer: v[at + 7]!,
    tos: v[at + 8]!,
    ttl: v[at + 9]!,
    priority: v[at + 10]!,
    mark: v[at + 11]!,
    notsentLowat: v[at + 12]!,
    reuseAddress,
    congestion,
  };
}

/**
 * Options that do not depend on the connection state, added to the writes made before the
 * repair-mode connect. Buffer sizes are set separately (they must also cover the queues being
 * refilled), and so is the congestion control (`applyCongestion`).
 */
export function addSocketOptionWrites(w: IntWrites, family: Family, o: SocketOptionsImage): void {
  w.set(C.SOL_TCP, C.TCP_NODELAY!, o.noDelay)
    .set(C.SOL_TCP, C.TCP_KEEPIDLE!, o.keepIdle)
    .set(C.SOL_TCP, C.TCP_KEEPINTVL!, o.keepInterval)
    .set(C.SOL_TCP, C.TCP_KEEPCNT!, o.keepCount)
    .set(C.SOL_SOCKET, C.SO_KEEPALIVE!, o.keepAlive)
    .set(C.SOL_TCP, C.TCP_USER_TIMEOUT!, o.userTimeout);
  if (family === 4) w.set(C.IPPROTO_IP, C.IP_TOS!, o.tos);
  else w.set(C.IPPROTO_IPV6, C.IPV6_TCLASS!, o.tos);
  // -1 would mean "route default" for IPv6 hops; the value read back is already resolved.
  if (family === 4) w.set(C.IPPROTO_IP, C.IP_TTL!, o.ttl);
  else w.set(C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS!, o.ttl);
  if (o.priority !== 0) w.set(C.SOL_SOCKET, C.SO_PRIORITY!, o.priority);
  if (o.mark !== 0) w.set(C.SOL_SOCKET, C.SO_MARK!, o.mark);
  w.set(C.SOL_TCP, C.TCP_NOTSENT_LOWAT!, o.notsentLowat);
}

export function applyCongestion(fd: number, congestion: string): void {
  if (congestion === '' || congestion === ll.getCongestion(fd)) return;
  try {
    ll.setCongestion(fd, congestion);
  } catch {
    // The destination kernel may lack the module (e.g. bbr): the connection still works
    // with the default; the difference is visible in TCP_INFO, not in the byte stream.
  }
}
