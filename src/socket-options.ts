/** Reading the options an application may have set, and putting them back on a restored socket. */
import * as ll from './lowlevel.js';
import type { Family } from './native-types.js';
import type { SocketOptionsImage } from './image.js';

export function readSocketOptions(fd: number, family: Family): SocketOptionsImage {
  return {
    noDelay: ll.getOption(fd, 'TCP_NODELAY') !== 0,
    keepAlive: ll.getOption(fd, 'SO_KEEPALIVE') !== 0,
    keepIdle: ll.getOption(fd, 'TCP_KEEPIDLE'),
    keepInterval: ll.getOption(fd, 'TCP_KEEPINTVL'),
    keepCount: ll.getOption(fd, 'TCP_KEEPCNT'),
    userTimeout: ll.getOption(fd, 'TCP_USER_TIMEOUT'),
    // The kernel reports twice what was set (it doubles for bookkeeping overhead).
    sendBuffer: ll.getOption(fd, 'SO_SNDBUF'),
    receiveBuffer: ll.getOption(fd, 'SO_RCVBUF'),
    tos: ll.getOption(fd, family === 4 ? 'IP_TOS' : 'IPV6_TCLASS'),
    ttl: ll.getOption(fd, family === 4 ? 'IP_TTL' : 'IPV6_UNICAST_HOPS'),
    priority: ll.getOption(fd, 'SO_PRIORITY'),
    mark: ll.getOption(fd, 'SO_MARK'),
    notsentLowat: ll.getOption(fd, 'TCP_NOTSENT_LOWAT'),
    reuseAddress: ll.getOption(fd, 'SO_REUSEADDR') !== 0,
    congestion: ll.getCongestion(fd),
  };
}

/**
 * Options that do not depend on the connection state; applied before the repair-mode connect.
 * Buffer sizes are set separately (they must also cover the queues being refilled).
 */
export function applySocketOptions(fd: number, family: Family, o: SocketOptionsImage): void {
  ll.setOption(fd, 'TCP_NODELAY', o.noDelay);
  ll.setOption(fd, 'TCP_KEEPIDLE', o.keepIdle);
  ll.setOption(fd, 'TCP_KEEPINTVL', o.keepInterval);
  ll.setOption(fd, 'TCP_KEEPCNT', o.keepCount);
  ll.setOption(fd, 'SO_KEEPALIVE', o.keepAlive);
  ll.setOption(fd, 'TCP_USER_TIMEOUT', o.userTimeout);
  ll.setOption(fd, family === 4 ? 'IP_TOS' : 'IPV6_TCLASS', o.tos);
  // -1 would mean "route default" for IPv6 hops; the value read back is already resolved.
  ll.setOption(fd, family === 4 ? 'IP_TTL' : 'IPV6_UNICAST_HOPS', o.ttl);
  if (o.priority !== 0) ll.setOption(fd, 'SO_PRIORITY', o.priority);
  if (o.mark !== 0) ll.setOption(fd, 'SO_MARK', o.mark);
  ll.setOption(fd, 'TCP_NOTSENT_LOWAT', o.notsentLowat);
  if (o.congestion !== '' && o.congestion !== ll.getCongestion(fd)) {
    try {
      ll.setCongestion(fd, o.congestion);
    } catch {
      // The destination kernel may lack the module (e.g. bbr): the connection still works
      // with the default; the difference is visible in TCP_INFO, not in the byte stream.
    }
  }
}
