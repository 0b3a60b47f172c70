/** Telling a TCP socket (and its family) from what SO_DOMAIN, SO_TYPE and SO_PROTOCOL read. */
import { native } from './load-addon.cjs';
import { SocketStateError } from './errors.js';
import type { Family } from './native-types.js';

const C = native.constants;

/**
 * The family of socket `fd` given its kind, refusing anything that is not a TCP stream socket.
 * lowlevel.assertTcpSocket reads the kind itself; checkpoint reads it with other options.
 */
export function tcpFamilyOf(fd: number, kind: { domain: number; type: number; protocol: number }): Family {
  if (kind.type !== C.SOCK_STREAM || kind.protocol !== C.IPPROTO_TCP) {
    throw new SocketStateError('ERR_NOT_TCP', `fd ${fd} is not a TCP socket (type ${kind.type}, protocol ${kind.protocol})`);
  }
  if (kind.domain === C.AF_INET) return 4;
  if (kind.domain === C.AF_INET6) return 6;
  throw new SocketStateError('ERR_NOT_TCP', `fd ${fd} is a TCP socket of unsupported family ${kind.domain}`);
}
