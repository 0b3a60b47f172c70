/**
 * Per-socket cost of checkpoint, release and restore, for the C reference and for the library,
 * measured alternately in the same bench run. Each measurement gets a fresh network namespace,
 * a fresh measured process and a fresh peer process holding the other ends.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { LineReader } from './lines.js';
import { nextLine, nextMessage } from './ipc.js';
import { Namespace } from './netns.js';
import { RECV_BYTES, SEND_BYTES, type Workload } from './workload.js';

/** The measured side's address, on the namespace's loopback (benchmarking space, RFC 2544). */
export const LOCAL_ADDRESS = '198.18.0.1';

export type Implementation = 'c' | 'node';

/**
 * Nanoseconds per phase, for all connections of one measurement: wall clock, and CPU time of
 * the thread doing the work (the C reference's only thread; Node's main thread). Node also
 * reports its whole process (…ProcessCpuNs: V8's GC and compiler helper threads added).
 */
export interface PhaseNs {
  checkpointNs: number;
  releaseNs: number;
  restoreNs: number;
  checkpointCpuNs: number;
  releaseCpuNs: number;
  restoreCpuNs: number;
  /** Node only: the image codec (encodeImage / decodeImage). */
  encodeNs?: number;
  decodeNs?: number;
  encodeCpuNs?: number;
  decodeCpuNs?: number;
  checkpointProcessCpuNs?: number;
  restoreProcessCpuNs?: number;
  imageBytes?: number;
  payloadBytes?: number;
  steps?: Record<string, { ns: number; calls: number }>;
  /** Connections whose peer received every byte after the restore… */
  verified?: number;
  /** …and those still waiting for a retransmission at the deadline (alive, not broken). */
  pending?: number;
}

export interface LocalOptions {
  referenceBinary: string;
  /** Per-step timing in the C reference (adds clock reads around every call). */
  steps?: boolean;
}

/** Waits for a child to exit on its own (so that a CPU profile gets written), up to `ms`. */
function exited(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function timeoutFor(connections: number): number {
  return 30_000 + connections * 20;
}

export async function measureOnce(impl: Implementation, connections: number, workload: Workload, options: LocalOptions): Promise<PhaseNs> {
  const ns = new Namespace('local');
  try {
    execFileSync('ip', ['-n', ns.name, 'addr', 'add', `${LOCAL_ADDRESS}/32`, 'dev', 'lo']);
    const timeoutMs = timeoutFor(connections);
    const peer = ns.fork('peer');
    await nextMessage(peer, 'started', 'peer start', timeoutMs);
    const args = [LOCAL_ADDRESS, String(connections), workload];
    const measured =
      impl === 'c'
        ? ns.spawn(options.referenceBinary, options.steps ? [...args, '--steps'] : args)
        : ns.fork('local-worker', args, ['--expose-gc']);
    const out = new LineReader(measured.stdout!);
    const listening = await nextLine(out, `${impl} listening`, timeoutMs);
    const port = Number(/^listening (\d+)$/.exec(listening)?.[1]);
    if (!port) throw new Error(`${impl}: unexpected output ${JSON.stringify(listening)}`);
    peer.send({ connect: { address: LOCAL_ADDRESS, port, count: connections, sendBytes: workload === 'queued' ? RECV_BYTES : 0 } });
    await nextMessage(peer, 'connected', 'peer connections', timeoutMs);
    measured.stdin!.write('prepare\n');
    const ready = await nextLine(out, `${impl} ready`, timeoutMs);
    if (ready !== 'ready') throw new Error(`${impl}: unexpected output ${JSON.stringify(ready)}`);
    measured.stdin!.write('go\n');
    const released = await nextLine(out, `${impl} released`, timeoutMs);
    if (released !== 'released') throw new Error(`${impl}: unexpected output ${JSON.stringify(released)}`);
    // Nothing holds the 4-tuples now: the peers may answer again (workload.ts).
    peer.send({ lift: true });
    await nextMessage(peer, 'lifted', 'peer filters lifted', timeoutMs);
    measured.stdin!.write('restore\n');
    const result = JSON.parse(await nextLine(out, `${impl} result`, timeoutMs)) as PhaseNs;
    const expected = (workload === 'queued' ? SEND_BYTES : 0) + 1;
    peer.send({ verify: { bytes: expected, timeoutMs: 30_000 } });
    const verified = await nextMessage<{ ok: number; pending: number; broken: string[] }>(peer, 'verified', 'peer verification', timeoutMs + 30_000);
    if (verified.broken.length > 0 || verified.ok === 0) {
      throw new Error(`${impl}: ${connections - verified.ok - verified.pending} of ${connections} connections broken after restore (${verified.broken.join('; ')})`);
    }
    measured.stdin!.end();
    await exited(measured, 5000);
    return { ...result, verified: verified.ok, pending: verified.pending };
  } finally {
    ns.destroy();
  }
}
