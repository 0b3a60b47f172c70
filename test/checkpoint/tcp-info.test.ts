/**
 * TCP_INFO of the restored socket: same window scales, SACK and timestamps; the same MSS over a
 * veth link (MTU 1500) between two namespaces. On loopback the MSS is capped: TCP_MAXSEG accepts
 * at most 32767, so the restored socket sends segments of 32767 less the option bytes.
 */
import t from 'tap';
import { createVethPair, runFixtureInNetns, createNetns } from '../helpers/netns-fixtures.js';

interface Info {
  sndWscale: number;
  rcvWscale: number;
  sack: boolean;
  timestamps: boolean;
  windowScaling: boolean;
  sndMss: number;
  advmss: number;
  rcvMss: number;
}
interface Result {
  before: Info;
  after: Info;
  later: Info;
  imageMss: number;
  echoed: number;
  sent: number;
}

function sameNegotiated(t: Tap.Test, r: Result) {
  for (const k of ['sndWscale', 'rcvWscale', 'sack', 'timestamps', 'windowScaling'] as const) {
    t.equal(r.after[k], r.before[k], `${k} restored (${r.before[k]})`);
  }
  t.equal(r.echoed, r.sent, 'echo round trip over the restored socket');
}

t.test('veth, MTU 1500: options and MSS restored exactly', async (t) => {
  const { a, b, addrA } = createVethPair(t, 'mss');
  const r = await runFixtureInNetns<Result>(a, 'tcpinfo-restore.mjs', [addrA, b], 30_000);
  t.comment(JSON.stringify(r));
  sameNegotiated(t, r);
  t.equal(r.imageMss, 1460, 'image MSS clamp is 1500 - 40');
  t.equal(r.after.sndMss, r.before.sndMss, `snd_mss equal (${r.before.sndMss})`);
  t.equal(r.later.sndMss, r.before.sndMss, 'and still equal after traffic');
});

t.test('loopback: options restored, MSS capped at TCP_MAXSEG 32767', async (t) => {
  const ns = createNetns(t, 'lo');
  const r = await runFixtureInNetns<Result>(ns, 'tcpinfo-restore.mjs', ['127.0.0.1'], 30_000);
  t.comment(JSON.stringify(r));
  sameNegotiated(t, r);
  t.equal(r.imageMss, 65495, 'image keeps the real clamp (65535 - 40)');
  const optionBytes = r.before.timestamps ? 12 : 0;
  t.equal(r.after.sndMss, 32767 - optionBytes, 'restored snd_mss is the TCP_MAXSEG cap less the timestamp option');
  t.ok(r.before.sndMss > r.after.sndMss, `original snd_mss ${r.before.sndMss} was larger (documented cap)`);
});
