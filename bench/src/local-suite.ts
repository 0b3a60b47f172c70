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

/** One clock's view: medians per socket, and the library ÷ C ratios. */
export interface ClockView {
  c: PerSocket;
  node: PerSocket;
  /** Node ÷ C, median of the per-run ratios (each run pairs adjacent measurements). */
  ratio: { checkpoint: number; restore: number; checkpointRestore: number };
}

export interface LocalResult {
  connections: number;
  workload: Workload;
  runs: number;
  /** CPU time of the measured process: the cost, little disturbed by other work on the machine. */
  cpu: ClockView;
  /** Wall clock: includes any time the process waited for a CPU. */
  wall: ClockView;
  /** Image bytes per connection beyond the queued payload (header and checksum). */
  imageOverheadBytes: number;
  samples: { c: PhaseNs[]; node: PhaseNs[] };
}

type Phase = 'checkpoint' | 'release' | 'restore' | 'encode' | 'decode';
type Clock = 'cpu' | 'wall';

function ns(sample: PhaseNs, phase: Phase, clock: Clock): number {
  const key = (clock === 'cpu' ? `${phase}CpuNs` : `${phase}Ns`) as keyof PhaseNs;
  return sample[key] as number;
}

function perSocket(samples: PhaseNs[], connections: number, clock: Clock): PerSocket {
  const us = (pick: (s: PhaseNs) => number) => round(median(samples.map((s) => pick(s) / connections / 1000)), 2);
  const at = (phase: Phase) => (s: PhaseNs) => ns(s, phase, clock);
  const out: PerSocket = {
    checkpoint: us(at('checkpoint')),
    release: us(at('release')),
    restore: us(at('restore')),
    checkpointRestore: us((s) => ns(s, 'checkpoint', clock) + ns(s, 'restore', clock)),
  };
  if (samples.every((s) => s.encodeNs !== undefined)) {
    out.encode = us(at('encode'));
    out.decode = us(at('decode'));
    out.withCodec = us((s) => ns(s, 'checkpoint', clock) + ns(s, 'encode', clock) + ns(s, 'decode', clock) + ns(s, 'restore', clock));
  }
  return out;
}

function pairedRatio(c: PhaseNs[], node: PhaseNs[], pick: (s: PhaseNs) => number): number {
  return round(median(c.map((sample, i) => pick(node[i]!) / pick(sample))), 3);
}

function view(c: PhaseNs[], node: PhaseNs[], connections: number, clock: Clock): ClockView {
  return {
    c: perSocket(c, connections, clock),
    node: perSocket(node, connections, clock),
    ratio: {
      checkpoint: pairedRatio(c, node, (x) => ns(x, 'checkpoint', clock)),
      restore: pairedRatio(c, node, (x) => ns(x, 'restore', clock)),
      checkpointRestore: pairedRatio(c, node, (x) => ns(x, 'checkpoint', clock) + ns(x, 'restore', clock)),
    },
  };
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
      cpu: view(s.c, s.node, pair.connections, 'cpu'),
      wall: view(s.c, s.node, pair.connections, 'wall'),
      imageOverheadBytes: round(((last.imageBytes ?? 0) - (last.payloadBytes ?? 0)) / pair.connections, 0),
      samples: s,
    };
  });
}
