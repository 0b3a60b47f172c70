/** tcp-repair: checkpoint a live TCP connection and restore it elsewhere (Linux TCP_REPAIR). */
export * as lowlevel from './lowlevel.js';
export { constants, TcpState, tcpStateName } from './lowlevel.js';
export type { Family, RepairOptions, RepairWindow, SocketAddress, TcpInfo, QueueSizes, QueueName, IntOptionName } from './lowlevel.js';
export { socketFd } from './socket-fd.js';
export { SocketStateError, isErrnoError } from './errors.js';
export type { ErrnoError } from './errors.js';
export { checkpoint, release, resume } from './checkpoint.js';
export type { CheckpointOptions } from './checkpoint.js';
export { restore, activate } from './restore.js';
export type { RestoreOptions } from './restore.js';
export { encodeImage, decodeImage, validateImage, ImageError, IMAGE_VERSION } from './image.js';
export type { SocketImage, ImageErrorCode, ImageState, Endpoint, NegotiatedOptions, SocketOptionsImage, NodeStateImage } from './image.js';
