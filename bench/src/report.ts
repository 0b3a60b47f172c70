/** The bench's printed tables. */
import type { LocalResult } from './local-suite.js';
import type { HostResult } from './host-suite.js';
import { fixed, table } from './table.js';

function localTable(results: LocalResult[], clock: 'cpu' | 'wall'): string {
  return table(
    ['N', 'workload', 'runs', 'C checkpoint', 'C restore', 'library checkpoint', 'library restore', 'ratio checkpoint', 'ratio restore', 'ratio checkpoint+restore'],
    results.map((r) => {
      const v = r[clock];
      return [
        r.connections, r.workload, r.runs,
        fixed(v.c.checkpoint), fixed(v.c.restore), fixed(v.node.checkpoint), fixed(v.node.restore),
        `${fixed(v.ratio.checkpoint, 2)}×`, `${fixed(v.ratio.restore, 2)}×`, `${fixed(v.ratio.checkpointRestore, 2)}×`,
      ];
    }),
  );
}

export function localTables(results: LocalResult[]): string {
  const extra = table(
    ['N', 'workload', 'C release', 'library release', 'encodeImage', 'decodeImage', 'library with codec', 'image bytes beyond payload'],
    results.map((r) => {
      const v = r.cpu;
      return [r.connections, r.workload, fixed(v.c.release), fixed(v.node.release), fixed(v.node.encode), fixed(v.node.decode), fixed(v.node.withCodec), r.imageOverheadBytes];
    }),
  );
  return [
    'Per-socket cost, CPU µs (medians; ratio = library ÷ C reference, median of paired runs)',
    localTable(results, 'cpu'),
    'The same, wall-clock µs',
    localTable(results, 'wall'),
    'Around it, CPU µs per socket (release = closing the frozen source; codec = encodeImage + decodeImage)',
    extra,
  ].join('\n\n');
}

const ms = (v: number | undefined) => fixed(v, 1);
const spread = (s: { p50: number; p99: number; max: number } | null) => (s ? `${ms(s.p50)} / ${ms(s.p99)} / ${ms(s.max)}` : '–');

export function hostTables(results: HostResult[]): string {
  const phases = table(
    ['N', 'runs', 'prepare (before the freeze)', 'checkpoint', 'transfer + restore', 'receiver restore', 'address move', 'activate', 'release', 'frozen (total freeze)', 'CPU µs/conn host-a, host-b', 'image bytes / conn beyond payload'],
    results.map((r) => [
      r.connections, r.runs, ms(r.phasesMs.prepare), ms(r.phasesMs.checkpoint), ms(r.phasesMs.transfer), ms(r.phasesMs.restore), ms(r.phasesMs.handover), ms(r.phasesMs.activate), ms(r.phasesMs.release), ms(r.frozenMs),
      `${fixed(r.cpuUsPerConnection['host-a'], 0)}, ${fixed(r.cpuUsPerConnection['host-b'], 0)}`, r.imageOverheadBytes,
    ]),
  );
  const clients = table(
    ['N', 'streams', 'request every', 'stall p50 / p99 / max', 'idle through the freeze: first answer p50 / p99 / max', 'request in the freeze: answered after it p50 / p99 / max', 'moved', 'failed', 'resets (move)', 'resets (close)'],
    results.map((r) => [
      r.connections, r.streams, `${r.requestIntervalMs} ms`, spread(r.stallMs), spread(r.idleFirstAnswerMs), spread(r.busyAfterFreezeMs), `${r.moved}/${r.connections * r.runs}`, r.failed, r.resets, r.resetsAtClose ?? '–',
    ]),
  );
  return `Host-to-host moves, ms (medians over the runs; percentiles within a run)\n\n${phases}\n\nWhat the clients saw, ms\n\n${clients}`;
}
