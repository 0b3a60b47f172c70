/**
 * The freeze lock's second half: attaching the drop-all filter stops segments that have not
 * reached the socket's filter yet, but one that passed the filter on another CPU a moment before
 * is still on its way to TCP. It is then processed (and acknowledged) after checkpoint read the
 * receive sequence: the peer believes those bytes delivered, the image does not hold them, and the
 * restored connection stalls for good (seen once in a 6.12 guest under TCG, where a vCPU can stop
 * in the middle of a softirq). Filtering and processing happen inside one RCU read-side section
 * (ip_local_deliver_finish -> tcp_v4_rcv), so one RCU grace period after the filters went on
 * settles every such segment: processed, or in the socket's backlog, which the next lock_sock /
 * release_sock (setsockopt(TCP_REPAIR)) drains before anything is read.
 *
 * A grace period takes 5-20 ms whatever the number of sockets: checkpoint() waits for one per
 * socket, migrate() locks its whole batch first and waits once ({@link lockForCheckpoint}).
 */
import type net from 'node:net';
import * as ll from './lowlevel.js';
import { noteMissing, off } from './features.js';
import { socketFd } from './socket-fd.js';

/** The wait when the kernel cannot tell us the grace period is over (membarrier refused). */
export const FALLBACK_SETTLE_MS = 50;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Returns once segments that passed a socket filter before the freeze filters were attached are
 * settled. Blocks: 5-20 ms with membarrier, {@link FALLBACK_SETTLE_MS} without.
 */
function settleSegmentsInFlight(): void {
  if (!off.filterGracePeriod) {
    try {
      ll.waitForFilterGracePeriod();
      return;
    } catch (error) {
      // EINVAL (nohz_full), ENOSYS (no CONFIG_MEMBARRIER), EPERM (a seccomp policy): later
      // checkpoints take the fixed wait without trying again.
      noteMissing('filterGracePeriod', error as Error);
    }
  }
  Atomics.wait(sleeper, 0, 0, FALLBACK_SETTLE_MS);
}

/** Sockets whose freeze filter is attached and settled, waiting for their checkpoint(). */
const settledLocks = new WeakSet<net.Socket>();

/**
 * Freezes a batch at once: attaches the freeze filter to each socket, then waits for one grace
 * period, so that checkpoint() of each of them needs no wait of its own. From here the sockets
 * receive nothing (their peers retransmit after the move); their own writes still queue. Sockets
 * that cannot take the filter (closed, no fd) are skipped: their checkpoint() reports why.
 * Every socket locked here must then be checkpointed or given to {@link unlockUnused}.
 */
export function lockForCheckpoint(sockets: Iterable<net.Socket>): void {
  let locked = 0;
  for (const socket of sockets) {
    try {
      ll.attachFreezeFilter(socketFd(socket));
    } catch {
      continue;
    }
    settledLocks.add(socket);
    locked++;
  }
  if (locked > 0) settleSegmentsInFlight();
}

/**
 * checkpoint()'s freeze lock: the one {@link lockForCheckpoint} left for this socket, or else
 * (when `filtered`) a filter and a grace period of its own. True when a filter is on, which the
 * checkpoint's rollback must take off again.
 */
export function takeOrLock(socket: net.Socket, fd: number, filtered: boolean): boolean {
  if (settledLocks.delete(socket)) return true;
  if (!filtered) return false;
  ll.attachFreezeFilter(fd);
  settleSegmentsInFlight();
  return true;
}

/** Removes the locks that no checkpoint() took (the batch stopped early): those sockets receive again. */
export function unlockUnused(sockets: Iterable<net.Socket>): void {
  for (const socket of sockets) {
    if (!settledLocks.delete(socket)) continue;
    try {
      ll.detachFreezeFilter(socketFd(socket));
    } catch {
      // destroyed meanwhile: nothing left to unlock
    }
  }
}
