/**
 * tcp-repair: checkpoint a live TCP connection and restore it elsewhere (Linux TCP_REPAIR).
 * @module tcp-repair
 */
/** The typed TCP_REPAIR primitives: one kernel operation per function, on a plain file descriptor. */
export * as lowlevel from './lowlevel.js';
export { constants, TcpState, tcpStateName } from './lowlevel.js';
export type { Family, RepairOptions, RepairWindow, SocketAddress, TcpInfo, QueueSizes, QueueName, IntOptionName } from './lowlevel.js';
export { socketFd } from './socket-fd.js';
export { SocketStateError, TcpRepairError, FeatureUnavailableError, isErrnoError } from './errors.js';
export type { ErrnoError } from './errors.js';
export { checkpoint, release, resume } from './checkpoint.js';
export type { CheckpointOptions } from './checkpoint.js';
export { lockForCheckpoint, unlockUnused } from './freeze-lock.js';
export { restore, activate } from './restore.js';
export type { RestoreOptions } from './restore.js';
export { encodeImage, decodeImage, validateImage, ImageError, IMAGE_VERSION } from './image.js';
export type { SocketImage, ImageErrorCode, ImageState, Endpoint, NegotiatedOptions, SocketOptionsImage, NodeStateImage } from './image.js';
export { probe } from './probe.js';
export type { Feature, FeatureName, ProbeReport } from './probe.js';
export { setDisabledFeatures, disabledFeatures, FEATURE_NAMES } from './features.js';
export { migrate } from './migrate/migrate.js';
export type { MigrateOptions, MigrationReport, MovedConnection, StayedConnection, PhaseTimings } from './migrate/migrate.js';
export { createReceiver, Receiver } from './migrate/receiver.js';
export type { ReceiverOptions, OnConnection, ReceivedConnection } from './migrate/receiver.js';
export type { Meta } from './migrate/frames.js';
export { writeImageFile, readImageFile } from './image-file.js';
export type { NativeConstants } from './native-types.js';
export { configureRepairHelper, repairHelper, repairHelperPath, hasNetAdmin } from './repair-helper.js';
export type { RepairHelperOptions } from './repair-helper.js';
