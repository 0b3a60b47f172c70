/**
 * The per-socket suite: every (connections, workload) pair measured `runs` times for the C
 * reference and for the library, the two alternating (C first in even rounds, Node first in odd
 * ones) and rounds interleaved across pairs, so a busy spell on the machine hits all alike.
 */
import { measureOnce, type Implementation, type LocalOptions, type PhaseNs } from './local.js';
import { median, round } from './stats.js';
import type { Workload } from './workload.js';

export interface LocalPlan {
  /** Connections → runs. */
  runs: Record<number, number>;
  workloads: readonly Workload[];
}

/** Microseconds per socket, medians over the runs. */
export interface PerSocket {
  checkpoint: number;
  release: number;
  restore: number;
  /** checkpoint + restore: the figure the target is about. */
  checkpointRestore: number;
  encode?: number;
  decode?: number;
  /** checkpoint + encode + decode + restore: what a move between processes costs the library. */
  withCodec?: number;
}

export interface LocalResult {
  connections: number;
  workload: Workload;
  runs: number;
  c: PerSocket;
  node: PerSocket;
  /** Node ÷ C, median of the per-run ratios (each run pairs adjacent measurements). */
  ratio: { checkpoint: number; restore: number; checkpointRestore: number };
  /** Image bytes per connection beyond the queued payload (header and checksum). */
  imageOverheadBytes: number;
  samples: { c: PhaseNs[]; node: PhaseNs[] };
}

function perSocket(samples: PhaseNs[], connections: number): PerSocket {
  const us = (pick: (s: PhaseNs) => number) => round(median(samples.map((s) => pick(s) / connections / 1000)), 2);
  const out: PerSocket = {
    checkpoint: us((s) => s.checkpointNs),
    release: us((s) => s.releaseNs),
    restore: us((s) => s.restoreNs),
    checkpointRestore: us((s) => s.checkpointNs + s.restoreNs),
  };
  if (samples.every((s) => s.encodeNs !== undefined)) {
    out.encode = us((s) => s.encodeNs!);
    out.decode = us((s) => s.decodeNs!);
    out.withCodec = us((s) => s.checkpointNs + s.encodeNs! + s.decodeNs! + s.restoreNs);
  }
  return out;
}

function pairedRatio(c: PhaseNs[], node: PhaseNs[], pick: (s: PhaseNs) => number): number {
  return round(median(c.map((sample, i) => pick(node[i]!) / pick(sample))), 3);
}

export async function runLocalSuite(plan: LocalPlan, options: LocalOptions, progress: (text: string) => void): Promise<LocalResult[]> {
  const pairs = Object.keys(plan.runs).map(Number).flatMap((connections) => plan.workloads.map((workload) => ({ connections, workload })));
  const samples = new Map(pairs.map((p) => [p, { c: [] as PhaseNs[], node: [] as PhaseNs[] }]));
  const rounds = Math.max(...Object.values(plan.runs));
  for (let r = 0; r < rounds; r++) {
    for (const pair of pairs) {
      if (r >= plan.runs[pair.connections]!) continue;
      const order: Implementation[] = r % 2 === 0 ? ['c', 'node'] : ['node', 'c'];
      for (const impl of order) {
        progress(`per-socket: N=${pair.connections} ${pair.workload}, run ${r + 1}/${plan.runs[pair.connections]}, ${impl === 'c' ? 'C reference' : 'library'}`);
        samples.get(pair)![impl].push(await measureOnce(impl, pair.connections, pair.workload, options));
      }
    }
  }
  return pairs.map((pair) => {
    const s = samples.get(pair)!;
    const last = s.node.at(-1)!;
    return {
      connections: pair.connections,
      workload: pair.workload,
      runs: s.c.length,
      c: perSocket(s.c, pair.connections),
      node: perSocket(s.node, pair.connections),
      ratio: {
        checkpoint: pairedRatio(s.c, s.node, (x) => x.checkpointNs),
        restore: pairedRatio(s.c, s.node, (x) => x.restoreNs),
        checkpointRestore: pairedRatio(s.c, s.node, (x) => x.checkpointNs + x.restoreNs),
      },
      imageOverheadBytes: round(((last.imageBytes ?? 0) - (last.payloadBytes ?? 0)) / pair.connections, 0),
      samples: s,
    };
  });
}
