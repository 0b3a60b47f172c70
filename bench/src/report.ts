/** The bench's printed tables. */
import type { LocalResult } from './local-suite.js';
import { fixed, table } from './table.js';

export function localTables(results: LocalResult[]): string {
  const main = table(
    ['N', 'workload', 'runs', 'C checkpoint', 'C restore', 'library checkpoint', 'library restore', 'ratio checkpoint', 'ratio restore', 'ratio checkpoint+restore'],
    results.map((r) => [
      r.connections, r.workload, r.runs,
      fixed(r.c.checkpoint), fixed(r.c.restore), fixed(r.node.checkpoint), fixed(r.node.restore),
      `${fixed(r.ratio.checkpoint, 2)}×`, `${fixed(r.ratio.restore, 2)}×`, `${fixed(r.ratio.checkpointRestore, 2)}×`,
    ]),
  );
  const extra = table(
    ['N', 'workload', 'C release', 'library release', 'encodeImage', 'decodeImage', 'library with codec', 'image bytes beyond payload'],
    results.map((r) => [
      r.connections, r.workload, fixed(r.c.release), fixed(r.node.release), fixed(r.node.encode), fixed(r.node.decode), fixed(r.node.withCodec), r.imageOverheadBytes,
    ]),
  );
  return `Per-socket cost, µs (medians; ratio = library ÷ C reference, median of paired runs)\n\n${main}\n\nAround it, µs per socket (release = closing the frozen source; codec = encodeImage + decodeImage)\n\n${extra}`;
}
