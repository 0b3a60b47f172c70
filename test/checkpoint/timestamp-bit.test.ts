/**
 * Since 6.7 the lowest bit of a TCP_TIMESTAMP value selects microsecond timestamps; images taken
 * on older kernels carry a plain millisecond clock there. Restoring one with that bit set must
 * not turn the connection's clock to microseconds (found by test/kernels/cross-kernel.test.ts,
 * 6.1 -> 6.12 and 6.1 -> host: the restored clock ran 1000 times fast).
 */
import t from 'tap';
import { createNetns, runFixtureInNetns } from '../helpers/netns-fixtures.js';

interface Result { timestamps: boolean; usec: boolean; odd: number; readBack: number; echoed: number; sent: number }

t.test('odd millisecond clock: restored with millisecond timestamps, one ms ahead at most', async (t) => {
  const ns = createNetns(t, 'tsbit');
  const r = await runFixtureInNetns<Result>(ns, 'odd-timestamp.mjs', ['127.0.0.1'], 30_000);
  t.comment(JSON.stringify(r));
  t.ok(r.timestamps, 'timestamps negotiated');
  t.equal(r.usec, false, 'TCP_INFO: no microsecond timestamps');
  const ahead = (r.readBack - r.odd) | 0;
  t.ok(ahead >= 0 && ahead < 1000, `clock carried over (read back ${r.readBack}, image ${r.odd}: +${ahead} ms)`);
  t.equal(r.echoed, r.sent, 'echo round trip over the restored socket');
});
