/** `tcp-repair inspect`: explain an image file, or the live TCP state of any process's socket. */
import * as ll from '../lowlevel.js';
import type { SocketImage } from '../image.js';
import { isErrnoError } from '../errors.js';
import { noteMissing, off, unavailable } from '../features.js';
export { readImageFile } from '../image-file.js';

export interface LiveSocketState {
  pid: number;
  fd: number;
  state: string;
  local: ll.SocketAddress;
  peer: ll.SocketAddress | null;
  queues: ll.QueueSizes;
  info: ll.TcpInfo;
  options: { noDelay: boolean; keepAlive: boolean; congestion: string; mssClampOrMss: number };
  /** Only with `repair: true`: read in repair mode (briefly), which the owner may notice. */
  sequences?: { recv: number; send: number; window: ll.RepairWindow | null };
}

/** Reads a socket of another process through a pidfd_getfd copy, by default without repair mode. */
export function inspectLive(pid: number, fd: number, options: { repair?: boolean } = {}): LiveSocketState {
  if (off.pidfdGetfd) throw unavailable('pidfdGetfd', 'inspecting another process\'s socket needs pidfd_getfd (Linux 5.6+)', 'Inspect an image file instead (checkpoint in that process, writeImageFile).');
  const copy = fromProcessOrExplain(pid, fd);
  try {
    ll.assertTcpSocket(copy);
    const info = ll.tcpInfo(copy);
    let peer: ll.SocketAddress | null = null;
    try {
      peer = ll.peerAddress(copy);
    } catch {
      peer = null; // listening or unconnected
    }
    const result: LiveSocketState = {
      pid,
      fd,
      state: ll.tcpStateName(info.state),
      local: ll.localAddress(copy),
      peer,
      queues: ll.queueSizes(copy),
      info,
      options: {
        noDelay: ll.getOption(copy, 'TCP_NODELAY') !== 0,
        keepAlive: ll.getOption(copy, 'SO_KEEPALIVE') !== 0,
        congestion: ll.getCongestion(copy),
        mssClampOrMss: ll.getMaxSeg(copy),
      },
    };
    if (options.repair) {
      // Repair mode makes the owner's reads fail with EPERM and writes with EINVAL for as long as
      // it lasts; leaving it with -1 sends nothing to the peer.
      ll.repairOn(copy);
      try {
        let window: ll.RepairWindow | null = null;
        try {
          window = ll.getRepairWindow(copy);
        } catch {
          window = null;
        }
        result.sequences = { recv: ll.getQueueSeq(copy, 'recv'), send: ll.getQueueSeq(copy, 'send'), window };
        ll.selectQueue(copy, 'none');
      } finally {
        leaveRepairQuietly(copy);
      }
    }
    return result;
  } finally {
    ll.closeFd(copy);
  }
}

function fromProcessOrExplain(pid: number, fd: number): number {
  try {
    return ll.fdFromProcess(pid, fd);
  } catch (error) {
    if (isErrnoError(error) && error.code === 'ENOSYS') {
      throw unavailable('pidfdGetfd', 'inspecting another process\'s socket needs pidfd_getfd (Linux 5.6+)', 'Inspect an image file instead.', error);
    }
    throw error;
  }
}

/**
 * Out of repair mode without a window probe (-1, ~4.18+); without repairOffNoWindowProbe (older
 * kernels refuse -1 with EINVAL) with one: the peer answers it with an ACK, nothing else changes.
 */
function leaveRepairQuietly(fd: number): void {
  if (!off.repairOffNoWindowProbe) {
    try {
      ll.repairOff(fd, { windowProbe: false });
      return;
    } catch (error) {
      if (!isErrnoError(error) || error.code !== 'EINVAL') throw error;
      noteMissing('repairOffNoWindowProbe', error);
    }
  }
  ll.repairOff(fd);
}

export function describeImage(image: SocketImage): string {
  const o = image.options;
  const lines = [
    `connection   ${image.local.address}:${image.local.port} <-> ${image.peer.address}:${image.peer.port} (IPv${image.family})`,
    `state        ${image.state}`,
    `taken at     ${new Date(image.takenAt).toISOString()}`,
    `recv seq     ${image.recvSeq} (rcv_nxt; ${image.recvQueue.length} bytes queued for the application)`,
    `send seq     ${image.sendSeq} (write_seq; ${image.sentUnacked.length} bytes sent unacked, ${image.unsent.length} unsent)`,
    `options      mss ${o.mss}, wscale ${o.sndWscale ?? '-'}/${o.rcvWscale ?? '-'} (snd/rcv), sack ${o.sack}, timestamps ${o.timestamps}`,
    `timestamp    ${image.timestamp}`,
    image.window
      ? `window       snd_wl1 ${image.window.sndWl1}, snd_wnd ${image.window.sndWnd}, max ${image.window.maxWindow}, rcv_wnd ${image.window.rcvWnd}, rcv_wup ${image.window.rcvWup}`
      : 'window       (not recorded: kernel without TCP_REPAIR_WINDOW)',
    `socket opts  ${JSON.stringify(image.socketOptions)}`,
    `node state   ${JSON.stringify(image.node)}`,
  ];
  return lines.join('\n');
}

export function describeLive(s: LiveSocketState): string {
  const i = s.info;
  const lines = [
    `socket       pid ${s.pid} fd ${s.fd}: ${s.local.address}:${s.local.port} <-> ${s.peer ? `${s.peer.address}:${s.peer.port}` : '-'}`,
    `state        ${s.state}`,
    `queues       inq ${s.queues.inq}, outq ${s.queues.outq} (${s.queues.notSent} not sent)`,
    `options      wscale ${i.sndWscale}/${i.rcvWscale} (snd/rcv), sack ${i.sack}, timestamps ${i.timestamps}, mss ${i.sndMss ?? '-'}/${i.rcvMss ?? '-'} (snd/rcv), clamp ${s.options.mssClampOrMss}`,
    `timing       rtt ${i.rtt ?? '-'} us (var ${i.rttvar ?? '-'}), rto ${i.rto ?? '-'} us, cwnd ${i.sndCwnd ?? '-'}, ssthresh ${i.sndSsthresh ?? '-'}`,
    `windows      peer's ${i.sndWnd ?? '-'}, rcv_space ${i.rcvSpace ?? '-'}`,
    `counters     bytes sent ${i.bytesSent ?? '-'}, acked ${i.bytesAcked ?? '-'}, received ${i.bytesReceived ?? '-'}, retrans ${i.totalRetrans ?? '-'}`,
    `socket opts  nodelay ${s.options.noDelay}, keepalive ${s.options.keepAlive}, congestion ${s.options.congestion}`,
  ];
  if (s.sequences) {
    const w = s.sequences.window;
    lines.push(`sequences    rcv_nxt ${s.sequences.recv}, write_seq ${s.sequences.send}`);
    if (w) lines.push(`window       snd_wl1 ${w.sndWl1}, snd_wnd ${w.sndWnd}, max ${w.maxWindow}, rcv_wnd ${w.rcvWnd}, rcv_wup ${w.rcvWup}`);
  }
  return lines.join('\n');
}
