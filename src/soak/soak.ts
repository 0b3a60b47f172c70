/**
 * The soak: live bidirectional streams moved back and forth between host-a and host-b, many
 * times, under 0, 1 and 5 % random packet loss (nftables, in the client's namespace, both
 * directions). Every move is verified: every connection moved, none reset, and every one
 * carried new bytes both ways afterwards; at the end every byte of every stream is checked.
 */
import { hangGuardMs } from '../child-ipc.js';
import { SoakHarness, type HarnessOptions } from './harness.js';

export interface SoakOptions extends Partial<HarnessOptions> {
  connections: number;
  /** Moves per loss level. */
  moves: number;
  /** Loss percentages, run one after the other on the same connections. */
  loss: number[];
  /** Per-move answer timeout given to migrate() (ms). */
  timeoutMs?: number;
  /** Called after every move (progress display). */
  onMove?: (level: number, index: number, result: MoveFigures) => void;
}

export interface MoveFigures {
  /** migrate() from start to report, as the driver saw it. */
  moveMs: number;
  /** First freeze to activation confirmed. */
  frozenMs: number;
  /** After the move, until every connection carried new bytes both ways. */
  recoveryMs: number;
}

export interface LevelReport {
  lossPercent: number;
  moves: number;
  failed: number;
  moveMs: Summary;
  frozenMs: Summary;
  recoveryMs: Summary;
  resets: { in: number; out: number };
  firstFailure?: string;
}

export interface Summary {
  p50: number;
  p99: number;
  max: number;
}

export interface SoakReport {
  connections: number;
  levels: LevelReport[];
  verification: { ok: boolean; problems: string[]; bytes: number };
  totalMoves: number;
  seconds: number;
  /** What the run created (all removed when it returns): for leak checks. */
  created: { namespaces: string[]; pids: number[] };
}

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
  return { p50: at(50), p99: at(99), max: sorted.at(-1) ?? 0 };
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = performance.now();
  const harness = await SoakHarness.create({ prefix: 'soak', ...options });
  try {
    await harness.waitProgress();
    const levels: LevelReport[] = [];
    for (const [levelIndex, loss] of options.loss.entries()) {
      if (loss > 0) await harness.topology.injectLoss('client', loss);
      else await harness.topology.clearLoss('client');
      const resetsBefore = await harness.resets();
      const figures: MoveFigures[] = [];
      let failed = 0;
      let firstFailure: string | undefined;
      for (let i = 0; i < options.moves && failed === 0; i++) {
        const result = await harness.move({ timeoutMs: options.timeoutMs ?? hangGuardMs(15000) });
        const o = result.outcome;
        if (o.error || o.moved !== options.connections) {
          failed++;
          firstFailure = `move ${i + 1} (${result.from} -> ${result.to}): moved ${o.moved}/${options.connections}${o.error ? `, ${o.error.code}: ${o.error.message}` : ''}${o.stayed.length ? `, stayed: ${o.stayed.join(', ')}` : ''}`;
          break;
        }
        const r0 = performance.now();
        try {
          await harness.waitProgress(30000);
        } catch (error) {
          failed++;
          firstFailure = `move ${i + 1} (${result.from} -> ${result.to}): ${(error as Error).message}`;
          break;
        }
        const resets = await harness.resets();
        if (resets.in !== resetsBefore.in || resets.out !== resetsBefore.out) {
          failed++;
          firstFailure = `move ${i + 1} (${result.from} -> ${result.to}): resets seen by the client (in ${resets.in - resetsBefore.in}, out ${resets.out - resetsBefore.out})`;
          break;
        }
        const f = { moveMs: result.ms, frozenMs: o.timings.frozen, recoveryMs: performance.now() - r0 };
        figures.push(f);
        options.onMove?.(levelIndex, i, f);
      }
      const resetsAfter = await harness.resets();
      levels.push({
        lossPercent: loss,
        moves: figures.length,
        failed,
        moveMs: summarize(figures.map((f) => f.moveMs)),
        frozenMs: summarize(figures.map((f) => f.frozenMs)),
        recoveryMs: summarize(figures.map((f) => f.recoveryMs)),
        resets: { in: resetsAfter.in - resetsBefore.in, out: resetsAfter.out - resetsBefore.out },
        firstFailure,
      });
      if (failed > 0) break;
    }
    await harness.topology.clearLoss('client');
    const verification = await harness.verifyAll();
    return {
      connections: options.connections,
      levels,
      verification,
      totalMoves: levels.reduce((n, l) => n + l.moves, 0),
      seconds: (performance.now() - started) / 1000,
      created: { namespaces: harness.topology.namespaces, pids: [...harness.pids.values()] },
    };
  } finally {
    await harness.close();
  }
}

const ms = (n: number) => `${n.toFixed(1)}`;

export function formatSoak(r: SoakReport): string {
  const lines = [
    `tcp-repair soak: ${r.connections} live bidirectional streams moved back and forth between host-a and host-b`,
    '',
    'loss  moves  failed  move ms p50/p99/max     frozen ms p50/p99/max   recovery ms p50/p99/max   resets in/out',
  ];
  for (const l of r.levels) {
    lines.push(
      `${`${l.lossPercent}%`.padEnd(6)}${String(l.moves).padEnd(7)}${String(l.failed).padEnd(8)}` +
        `${`${ms(l.moveMs.p50)}/${ms(l.moveMs.p99)}/${ms(l.moveMs.max)}`.padEnd(24)}` +
        `${`${ms(l.frozenMs.p50)}/${ms(l.frozenMs.p99)}/${ms(l.frozenMs.max)}`.padEnd(24)}` +
        `${`${ms(l.recoveryMs.p50)}/${ms(l.recoveryMs.p99)}/${ms(l.recoveryMs.max)}`.padEnd(26)}${l.resets.in}/${l.resets.out}`,
    );
    if (l.firstFailure) lines.push(`  first failure: ${l.firstFailure}`);
  }
  lines.push(
    '',
    `moves                  ${r.totalMoves}, each verified (all moved, none reset, new bytes both ways after it)`,
    `bytes verified         ${r.verification.bytes} (every byte checked at its receiver; sha256 of each direction recomputed)`,
    `duration               ${r.seconds.toFixed(0)} s`,
    `result                 ${r.verification.ok && r.levels.every((l) => l.failed === 0) ? 'PASS: no byte lost, no reset' : 'FAIL'}`,
  );
  for (const p of r.verification.problems.slice(0, 10)) lines.push(`  ${p}`);
  return lines.join('\n');
}
