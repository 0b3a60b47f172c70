/**
 * Kernel feature probing: each feature is found by trying it on a throwaway socket, never by
 * reading the kernel version. Used by `tcp-repair probe`, by tests, and by apps that want to
 * know before they checkpoint.
 */
import net from 'node:net';
import os from 'node:os';
import * as ll from './lowlevel.js';
import { isErrnoError } from './errors.js';

/** The kernel features tcp-repair relies on, each found by trying it. */
export type FeatureName =
  | 'tcpRepair'
  | 'repairOptions'
  | 'repairWindow'
  | 'timestampSet'
  | 'repairOffNoWindowProbe'
  | 'queueRefill'
  | 'queuePeek'
  | 'halfClosedRepair'
  | 'ipv6'
  | 'freebind'
  | 'transparent'
  | 'freezeFilter'
  | 'pidfdGetfd';

/** One probed feature: available or not (and why), and what it means for tcp-repair. */
export interface Feature {
  name: FeatureName;
  available: boolean;
  /** The error code when unavailable (EPERM: no privilege; ENOPROTOOPT: kernel lacks it). */
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

const DESCRIPTIONS: Record<FeatureName, { enables: string; fallback: string }> = {
  tcpRepair: { enables: 'everything: TCP_REPAIR itself, with CAP_NET_ADMIN in this network namespace', fallback: 'none: checkpoint and restore refuse with the errno (EPERM: run as root or in `unshare -Urn`)' },
  repairOptions: { enables: 'restoring MSS, window scaling, SACK and timestamps (TCP_REPAIR_OPTIONS)', fallback: 'none: restore refuses' },
  repairWindow: { enables: 'exact send/receive windows after restore and the send-window freeze (TCP_REPAIR_WINDOW, ~4.8)', fallback: 'checkpoint stores no window and restore lets the kernel derive it, as CRIU does' },
  timestampSet: { enables: 'the TCP timestamp clock carried over (TCP_TIMESTAMP set)', fallback: 'restore refuses images with timestamps' },
  repairOffNoWindowProbe: { enables: 'silent restore before the address moves (TCP_REPAIR_OFF_NO_WP, ~4.18)', fallback: 'quiet restore is refused; plain restore sends a window probe' },
  queueRefill: { enables: 'refilling receive and send queues in repair mode', fallback: 'none: restore refuses' },
  queuePeek: { enables: 'reading queued bytes in repair mode (MSG_PEEK)', fallback: 'none: checkpoint refuses' },
  halfClosedRepair: { enables: 'checkpoint of CLOSE_WAIT sockets (repair of half-closed sockets, 4.10)', fallback: 'CLOSE_WAIT sockets are refused (EPERM)' },
  ipv6: { enables: 'IPv6 and v4-mapped connections', fallback: 'IPv6 images cannot be restored' },
  freebind: { enables: 'binding an address not yet configured (IP_FREEBIND)', fallback: 'use transparent' },
  transparent: { enables: 'restoring before the service address arrives (IP_TRANSPARENT)', fallback: 'the destination must own the address before restoring' },
  freezeFilter: { enables: 'the per-socket freeze lock (drop-all BPF socket filter)', fallback: "checkpoint with lock: 'none' under an external lock (e.g. nftables)" },
  pidfdGetfd: { enables: '`tcp-repair inspect --pid --fd` (pidfd_getfd, 5.6)', fallback: 'inspect only images and own sockets' },
};

function attempt(name: FeatureName, fn: () => void): Feature {
  const base = { name, ...DESCRIPTIONS[name] };
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
    const fd = ll.dupFd((serverSide as unknown as { _handle: { fd: number } })._handle.fd);
    const feature = attempt('halfClosedRepair', () => {
      ll.repairOn(fd);
      ll.repairOff(fd, { windowProbe: false });
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
    attempt('pidfdGetfd', withSocket(() => ll.createSocket(4), (fd) => ll.closeFd(ll.fdFromProcess(process.pid, fd)))),
  ];
  return { kernel: os.release(), node: process.version, features };
}
