/** tcp-repair: checkpoint a live TCP connection and restore it elsewhere (Linux TCP_REPAIR). */
export * as lowlevel from './lowlevel.js';
export { constants, TcpState, tcpStateName } from './lowlevel.js';
export type { Family, RepairOptions, RepairWindow, SocketAddress, TcpInfo, QueueSizes, QueueName, IntOptionName } from './lowlevel.js';
export { socketFd } from './socket-fd.js';
export { SocketStateError, isErrnoError } from './errors.js';
export type { ErrnoError } from './errors.js';
