/**
 * The per-socket workloads, identical for the C reference (bench/reference.c) and the Node
 * worker: "idle" (empty queues) and "queued" (4 KiB received and not read, 8 KiB sent and not
 * acknowledged, so checkpoint peeks and restore refills both repair queues).
 *
 * In "queued" the peer goes silent behind a drop-all filter once its 4 KiB are acknowledged:
 * the measured side's 8 KiB then stay unacknowledged, and the peer cannot answer a frozen
 * source's retransmission after that source was released (the answer would meet no socket and
 * draw an RST). The driver has the peer lift its filter once every source is released and
 * before the restore; the restored side then retransmits and the peer acknowledges.
 */
import type net from 'node:net';
import { lowlevel } from 'tcp-repair';

export type Workload = 'idle' | 'queued';
export const WORKLOADS: readonly Workload[] = ['idle', 'queued'];

/** Bytes the peer sends on each connection before the checkpoint (left unread). */
export const RECV_BYTES = 4096;
/** Bytes the measured side sends on each connection, whose ACKs are held back. */
export const SEND_BYTES = 8192;
/** The byte each restored connection sends so that the peer can tell it still works. */
export const PROOF = '!';

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

/** The peer's side of "queued": once its own bytes are acknowledged, drop everything it receives. */
export async function silencePeer(fd: number): Promise<void> {
  while (lowlevel.queueSizes(fd).outq > 0) await tick();
  lowlevel.attachFreezeFilter(fd);
}

/** Brings accepted (paused) sockets into the "queued" state, as reference.c prepare_queued() does. */
export async function prepareQueued(sockets: readonly net.Socket[]): Promise<void> {
  const fds = sockets.map((s) => (s as unknown as { _handle: { fd: number } })._handle.fd);
  for (const fd of fds) while (lowlevel.queueSizes(fd).inq < RECV_BYTES) await tick();
  const payload = Buffer.alloc(SEND_BYTES, 2);
  for (const socket of sockets) socket.write(payload);
  for (const fd of fds) {
    for (;;) {
      const q = lowlevel.queueSizes(fd);
      if (q.outq >= SEND_BYTES && q.notSent === 0) break;
      await tick();
    }
  }
}
