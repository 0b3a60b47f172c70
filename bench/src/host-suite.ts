/**
 * The host-to-host suite: N connections moved between the test hosts, `runs` times per N, with
 * each figure reported as the median over the runs (percentiles are taken within a run).
 */
import { measureHostOnce, requestInterval, type HostSample } from './host.js';
import { median, percentile, round } from './stats.js';

export interface HostPlan {
  /** Connections → runs. */
  runs: Record<number, number>;
  ipv6: boolean;
}

export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

export interface HostRunSummary {
  moved: number;
  stayed: number;
  error?: string;
  timings: Record<string, number>;
  addressMoveMs: number;
  frozenMs: number;
  stallMs: Spread;
  idleFirstAnswerMs: Spread | null;
  busyAfterFreezeMs: Spread | null;
  busyConnections: number;
  idleConnections: number;
  failed: number;
  failures: string[];
  resets: Record<string, number>;
  resetsDuringMove: Record<string, number>;
  /** TcpExt counters (reasons for RSTs and drops) that changed while the clients closed. */
  finishCounters: Record<string, Record<string, number>>;
  /** RSTs sent while the clients closed, with their connection's FINs (tcpdump lines). */
  closeResets: Record<string, string[]>;
  imageOverheadBytes: number;
  /** CPU µs per connection each host spent on the move (start of migrate() to its report). */
  cpuUsPerConnection: Record<string, number>;
  loadAverage: number;
}

export interface HostResult {
  connections: number;
  runs: number;
  streams: number;
  requestIntervalMs: number;
  /** migrate()'s phases, ms (medians). */
  phasesMs: Record<string, number>;
  addressMoveMs: number;
  frozenMs: number;
  stallMs: Spread;
  idleFirstAnswerMs: Spread | null;
  busyAfterFreezeMs: Spread | null;
  /** Sums over the runs: these must be N × runs, 0, 0. */
  moved: number;
  failed: number;
  /** RSTs any host sent from before the move until the clients start closing (the target: 0). */
  resets: number;
  /** RSTs sent while the clients closed (after the measurement; see closeResets per run). */
  resetsAtClose: number;
  imageOverheadBytes: number;
  /** CPU µs per connection on each host (medians). */
  cpuUsPerConnection: Record<string, number>;
  perRun: HostRunSummary[];
}

function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  return { p50: round(percentile(values, 50), 1), p99: round(percentile(values, 99), 1), max: round(Math.max(...values), 1) };
}

export function summarise(sample: HostSample): HostRunSummary {
  const rr = sample.results.filter((r) => r.kind === 'rr');
  const busy = rr.filter((r) => r.busy);
  const idle = rr.filter((r) => !r.busy);
  const failed = sample.results.filter((r) => !r.ok);
  return {
    moved: sample.moved,
    stayed: sample.stayed.length,
    ...(sample.error ? { error: sample.error } : {}),
    timings: Object.fromEntries(Object.entries(sample.timings).map(([k, v]) => [k, round(v, 2)])),
    addressMoveMs: round(sample.addressMoveMs, 1),
    frozenMs: round(sample.timings.frozen ?? NaN, 1),
    stallMs: spread(sample.results.map((r) => r.stall))!,
    idleFirstAnswerMs: spread(idle.flatMap((r) => (r.firstAfter === undefined ? [] : [r.firstAfter]))),
    busyAfterFreezeMs: spread(busy.flatMap((r) => (r.afterFreeze === undefined ? [] : [r.afterFreeze]))),
    busyConnections: busy.length,
    idleConnections: idle.length,
    failed: failed.length,
    failures: failed.slice(0, 3).map((r) => `${r.kind}: ${r.error}`),
    resets: sample.resets,
    resetsDuringMove: sample.resetsDuringMove,
    finishCounters: sample.finishCounters,
    closeResets: sample.closeResets,
    cpuUsPerConnection: Object.fromEntries(Object.entries(sample.cpuMs).map(([host, ms]) => [host, round((ms * 1000) / sample.connections, 1)])),
    loadAverage: sample.loadAverage,
    imageOverheadBytes: sample.moved > 0 ? round((sample.imageBytes - sample.payloadBytes) / sample.moved, 0) : 0,
  };
}

function medianSpread(spreads: Array<Spread | null>): Spread | null {
  const present = spreads.filter((s): s is Spread => s !== null);
  if (present.length === 0) return null;
  return { p50: median(present.map((s) => s.p50)), p99: median(present.map((s) => s.p99)), max: median(present.map((s) => s.max)) };
}

/** A few echo streams, busy through the move (one in ten connections, at most ten). */
export function streamsFor(connections: number): number {
  return Math.min(10, Math.floor(connections / 10));
}

export async function runHostSuite(plan: HostPlan, progress: (text: string) => void): Promise<HostResult[]> {
  const results: HostResult[] = [];
  for (const connections of Object.keys(plan.runs).map(Number).sort((a, b) => a - b)) {
    const runs: HostRunSummary[] = [];
    const intervalMs = requestInterval(connections);
    for (let r = 0; r < plan.runs[connections]!; r++) {
      progress(`host-to-host: N=${connections}, run ${r + 1}/${plan.runs[connections]}`);
      const sample = await measureHostOnce(connections, { intervalMs, streams: streamsFor(connections), streamBytes: 256 * 1024 * 1024, ipv6: plan.ipv6, progress });
      runs.push(summarise(sample));
    }
    const phaseNames = Object.keys(runs[0]!.timings);
    results.push({
      connections,
      runs: runs.length,
      streams: streamsFor(connections),
      requestIntervalMs: intervalMs,
      phasesMs: Object.fromEntries(phaseNames.map((k) => [k, round(median(runs.map((x) => x.timings[k]!)), 1)])),
      addressMoveMs: round(median(runs.map((x) => x.addressMoveMs)), 1),
      frozenMs: round(median(runs.map((x) => x.frozenMs)), 1),
      stallMs: medianSpread(runs.map((x) => x.stallMs))!,
      idleFirstAnswerMs: medianSpread(runs.map((x) => x.idleFirstAnswerMs)),
      busyAfterFreezeMs: medianSpread(runs.map((x) => x.busyAfterFreezeMs)),
      moved: runs.reduce((n, x) => n + x.moved, 0),
      failed: runs.reduce((n, x) => n + x.failed, 0),
      resets: runs.reduce((n, x) => n + Object.values(x.resetsDuringMove).reduce((a, b) => a + b, 0), 0),
      resetsAtClose: runs.reduce((n, x) => n + Object.values(x.resets).reduce((a, b) => a + b, 0) - Object.values(x.resetsDuringMove).reduce((a, b) => a + b, 0), 0),
      imageOverheadBytes: median(runs.map((x) => x.imageOverheadBytes)),
      cpuUsPerConnection: {
        'host-a': round(median(runs.map((x) => x.cpuUsPerConnection['host-a']!)), 1),
        'host-b': round(median(runs.map((x) => x.cpuUsPerConnection['host-b']!)), 1),
      },
      perRun: runs,
    });
  }
  return results;
}
