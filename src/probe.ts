/**
 * Kernel feature probing: each feature is found by trying it on a throwaway socket, never by
 * reading the kernel version. Used by `tcp-repair probe`, by tests, and by apps that want to
 * know before they checkpoint.
 */
import net from 'node:net';
import os from 'node:os';
import * as ll from './lowlevel.js';
import { isErrnoError } from './errors.js';
import { DISABLE_ENV, FEATURE_NAMES, isDisabled, type FeatureName } from './features.js';
import { FALLBACK_SETTLE_MS } from './freeze-lock.js';
import { socketFd } from './socket-fd.js';

export type { FeatureName } from './features.js';

/** One probed feature: available or not (and why), and what it means for tcp-repair. */
export interface Feature {
  name: FeatureName;
  available: boolean;
  /**
   * The error code when unavailable (EPERM: no privilege; ENOPROTOOPT: kernel lacks it;
   * EDISABLED: forced off with TCP_REPAIR_DISABLE or setDisabledFeatures(), not tried).
   */
  code?: string;
  detail?: string;
  /** What the feature enables in tcp-repair. */
  enables: string;
  /** What happens without it. */
  fallback: string;
}

/** What {@link probe} found. */
export interface ProbeReport {
  /** os.release() of the running kernel, for the record (never used to decide anything). */
  kernel: string;
  node: string;
  features: Feature[];
}

/**
 * What each feature enables, and what checkpoint and restore do without it (src/features.ts has
 * the switch, src/checkpoint.ts and src/restore.ts the fallbacks; test/fallbacks/ checks each).
 */
const DESCRIPTIONS: Record<FeatureName, { enables: string; fallback: string }> = {
  tcpRepair: {
    enables: 'everything: TCP_REPAIR itself, with CAP_NET_ADMIN in this network namespace (or the repair helper)',
    fallback: 'none: checkpoint and restore refuse (FeatureUnavailableError; without privilege the EPERM error says how to get it)',
  },
  repairOptions: {
    enables: 'restoring MSS, window scaling, SACK and timestamps (TCP_REPAIR_OPTIONS)',
    fallback: 'none: restore refuses (FeatureUnavailableError); checkpoint does not need it',
  },
  repairWindow: {
    enables: 'exact send/receive windows after restore and the send-window freeze (TCP_REPAIR_WINDOW, ~4.8)',
    fallback: 'checkpoint stores no window (window: null) and cannot close the send window while frozen; restore lets the kernel derive the windows from the peer\'s next segment, as CRIU does',
  },
  timestampSet: {
    enables: 'the TCP timestamp clock carried over (TCP_TIMESTAMP set)',
    fallback: 'restore refuses images whose connection negotiated timestamps (the peer would drop segments whose clock went back); images without timestamps restore',
  },
  repairOffNoWindowProbe: {
    enables: 'leaving repair mode without a window probe (TCP_REPAIR_OFF_NO_WP, ~4.18): `inspect --repair` sends nothing to the peer',
    fallback: '`inspect --repair` leaves repair mode with a window probe (the peer answers with an ACK); checkpoint and restore never need it (quiet restore stays in repair mode until activate())',
  },
  queueRefill: {
    enables: 'refilling receive and send queues in repair mode',
    fallback: 'restore refuses images with received or sent-unacknowledged bytes (FeatureUnavailableError); images with empty queues restore',
  },
  queuePeek: {
    enables: 'reading queued bytes in repair mode (MSG_PEEK)',
    fallback: 'checkpoint refuses sockets with bytes in their kernel queues and leaves them working (FeatureUnavailableError); idle sockets checkpoint',
  },
  halfClosedRepair: {
    enables: 'checkpoint of CLOSE_WAIT sockets (repair of half-closed sockets, 4.10)',
    fallback: 'checkpoint refuses CLOSE_WAIT sockets and leaves them working (FeatureUnavailableError); restoring a CLOSE_WAIT image does not need it',
  },
  ipv6: {
    enables: 'IPv6 and v4-mapped connections (sockets of a server listening on ::)',
    fallback: 'restore refuses IPv6 images (FeatureUnavailableError); listen on an IPv4 address to get IPv4 images',
  },
  freebind: {
    enables: 'binding an address not yet configured (IP_FREEBIND); offered to lowlevel users only',
    fallback: 'none needed: checkpoint and restore never use it (a repair-mode connect from a freebind address fails with ENETUNREACH; restore uses transparent)',
  },
  transparent: {
    enables: 'restoring before the service address arrives (IP_TRANSPARENT, `transparent: true`)',
    fallback: 'restore binds without it: works when the address is already on this host, otherwise refuses (FeatureUnavailableError): add the address before restoring',
  },
  freezeFilter: {
    enables: 'the per-socket freeze lock (drop-all BPF socket filter), quiet restore, the guard of a same-process hand-over',
    fallback: "checkpoint refuses lock: 'filter' (use lock: 'none' under an external lock, e.g. nftables) and quiet restore (FeatureUnavailableError); a same-process hand-over goes without its guard (the external lock covers the gap)",
  },
  filterGracePeriod: {
    enables: 'a freeze lock that holds at once: one wait for an RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL), 5-20 ms per checkpoint or per batch of migrate()) lets segments that passed the filter just before it went on finish, so none is acknowledged after the checkpoint read the sequence numbers',
    fallback: `checkpoint waits a fixed ${FALLBACK_SETTLE_MS} ms instead (blocking, as the grace period does): almost always enough, not a guarantee (EINVAL on nohz_full kernels, ENOSYS without CONFIG_MEMBARRIER)`,
  },
  pidfdGetfd: {
    enables: '`tcp-repair inspect --pid --fd` (pidfd_getfd, 5.6)',
    fallback: 'inspect --pid refuses (FeatureUnavailableError); inspect images and own sockets',
  },
};

/** The entry of a feature forced off: reported unavailable, not tried. */
function disabledEntry(name: FeatureName): Feature {
  return { name, ...DESCRIPTIONS[name], available: false, code: 'EDISABLED', detail: `forced off (${DISABLE_ENV} or setDisabledFeatures()); not tried` };
}

function attempt(name: FeatureName, fn: () => void): Feature {
  const base = { name, ...DESCRIPTIONS[name] };
  if (isDisabled(name)) return disabledEntry(name);
  try {
    fn();
    return { ...base, available: true };
  } catch (error) {
    const code = isErrnoError(error) ? error.code : 'ERROR';
    return { ...base, available: false, code, detail: (error as Error).message };
  }
}

/** A socket ESTABLISHED by a repair-mode connect: no peer needed, nothing sent. */
function repairConnected(family: 4 | 6, address: string): number {
  const fd = ll.createSocket(family);
  ll.repairOn(fd);
  ll.setQueueSeq(fd, 'recv', 1000);
  ll.setQueueSeq(fd, 'send', 2000);
  ll.bind(fd, family, address, 0);
  // Port 9 (discard) on loopback: in repair mode connect sends no SYN.
  ll.connect(fd, family, address, 9);
  return fd;
}

function withSocket(open: () => number, use: (fd: number) => void): () => void {
  return () => {
    const fd = open();
    try {
      use(fd);
    } finally {
      ll.closeFd(fd); // in repair mode: silent
    }
  };
}

async function probeHalfClosed(): Promise<Feature> {
  if (isDisabled('halfClosedRepair')) return disabledEntry('halfClosedRepair');
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as net.AddressInfo;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const serverSide = await accepted;
    const ended = new Promise((resolve) => serverSide.once('end', resolve));
    serverSide.resume();
    client.end();
    await ended;
    const fd = ll.dupFd(socketFd(serverSide));
    const feature = attempt('halfClosedRepair', () => {
      ll.repairOn(fd);
      // With a window probe (the client just ACKs it): -1 would make this depend on ~4.18.
      ll.repairOff(fd);
    });
    ll.closeFd(fd);
    client.destroy();
    serverSide.destroy();
    return feature;
  } finally {
    server.close();
  }
}

/**
 * Tries each feature tcp-repair relies on, on throwaway sockets (a repair-mode connect on loopback
 * sends nothing), and reports what is available with this kernel and this process's privileges.
 * Features forced off (TCP_REPAIR_DISABLE, setDisabledFeatures()) are reported unavailable with
 * code 'EDISABLED' without being tried. Checkpoint and restore never call it.
 */
export async function probe(): Promise<ProbeReport> {
  const v4 = () => repairConnected(4, '127.0.0.1');
  const features: Feature[] = [
    attempt('tcpRepair', withSocket(() => ll.createSocket(4), (fd) => ll.repairOn(fd))),
    attempt('repairOptions', withSocket(v4, (fd) => ll.setRepairOptions(fd, { mss: 1460, sndWscale: 7, rcvWscale: 7, sackPermitted: true, timestamps: true }))),
    attempt('repairWindow', withSocket(v4, (fd) => ll.setRepairWindow(fd, ll.getRepairWindow(fd)))),
    attempt('timestampSet', withSocket(v4, (fd) => ll.setTimestamp(fd, ll.getTimestamp(fd) + 1000))),
    attempt('repairOffNoWindowProbe', withSocket(v4, (fd) => { ll.repairOff(fd, { windowProbe: false }); ll.repairOn(fd); })),
    attempt('queueRefill', withSocket(v4, (fd) => { ll.refillQueue(fd, 'recv', Buffer.from('probe')); ll.refillQueue(fd, 'send', Buffer.from('probe')); })),
    attempt('queuePeek', withSocket(v4, (fd) => {
      ll.refillQueue(fd, 'recv', Buffer.from('peek'));
      if (ll.peekQueue(fd, 'recv', 4).toString() !== 'peek') throw new Error('peeked bytes differ');
    })),
    await probeHalfClosed(),
    attempt('ipv6', withSocket(() => repairConnected(6, '::1'), () => {})),
    attempt('freebind', withSocket(() => ll.createSocket(4), (fd) => ll.setFreebind(fd, 4))),
    attempt('transparent', withSocket(() => ll.createSocket(4), (fd) => ll.setTransparent(fd, 4))),
    attempt('freezeFilter', withSocket(() => ll.createSocket(4), (fd) => { ll.attachFreezeFilter(fd); ll.detachFreezeFilter(fd); })),
    attempt('filterGracePeriod', () => ll.waitForFilterGracePeriod()),
    attempt('pidfdGetfd', withSocket(() => ll.createSocket(4), (fd) => ll.closeFd(ll.fdFromProcess(process.pid, fd)))),
  ];
  // One entry per name, in FEATURE_NAMES order (tests check the list is complete).
  const order = new Map(FEATURE_NAMES.map((n, i) => [n, i]));
  features.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  return { kernel: os.release(), node: process.version, features };
}
