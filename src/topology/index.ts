/**
 * Test and demo hosts as network namespaces: the ground the host-to-host migration runs on.
 * Imported as `tcp-repair/topology`.
 * @module tcp-repair/topology
 */
export { createTopology, Topology } from './topology.js';
export type { Host, HostRef, MoveTimings, TopologyOptions } from './topology.js';
export { HOST_INTERFACE, HOST_ROLES, OVERLAY, OVERLAY_INTERFACE, OVERLAY_SERVICE, SERVICE, UNDERLAY, UNDERLAY_PREFIX } from './addresses.js';
export type { AddressPair, HostRole } from './addresses.js';
export { sweepStale } from './cleanup.js';
export { clearLoss, countResets, injectLoss, tcpCounters, allowNonLocalBind, guardResets, unguardResets } from './faults.js';
export type { LossDirection } from './faults.js';
export { CommandError, execIn, spawnIn, run } from './run.js';
export type { RunOptions, RunResult } from './run.js';
export type { AnnounceMethod } from './announce.js';
