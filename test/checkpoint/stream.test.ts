/**
 * 8 MiB of random bytes each way over one connection while the server side is checkpointed and
 * restored 100 times mid-stream, in a fresh network namespace whose TCP counters belong to this
 * scenario alone: every byte arrives (sha256 on both ends), the client sees no 'end'/'error',
 * and no RST leaves the namespace's stack (OutRsts; EstabResets counts the closed repair-mode
 * sources, a state change, not a packet).
 */
import t from 'tap';
import { createNetns, runFixtureInNetns } from '../helpers/netns-fixtures.js';
import { scaled } from '../helpers/time-scale.js';

interface StreamResult {
  n: number;
  size: number;
  clientGot: number;
  serverGot: number;
  clientOk: boolean;
  serverOk: boolean;
  clientEvents: string[];
  serverEvents: string[];
  outRsts: number;
  estabResets: number;
  retransSegs: number;
  elapsedMs: number;
  checkpointMs: { median: number; max: number };
  restoreMs: { median: number; max: number };
  imagesWith: { recv: number; sentUnacked: number; unsent: number };
}

t.test('100 restores mid-stream, 8 MiB each way, no RST', async (t) => {
  const ns = createNetns(t, 'stream');
  const r = await runFixtureInNetns<StreamResult>(ns, 'stream-restores.mjs', ['100', String(8 * 1024 * 1024)], 60_000);
  t.comment(`elapsed ${r.elapsedMs} ms; checkpoint median ${r.checkpointMs.median} ms (max ${r.checkpointMs.max}); restore median ${r.restoreMs.median} ms (max ${r.restoreMs.max}); retransmitted segments ${r.retransSegs}; images with recv/sentUnacked/unsent bytes: ${JSON.stringify(r.imagesWith)}`);
  t.equal(r.clientGot, r.size, 'client received 8 MiB');
  t.equal(r.serverGot, r.size, 'server received 8 MiB');
  t.ok(r.clientOk, 'client sha256 matches what the server sent');
  t.ok(r.serverOk, 'server sha256 matches what the client sent');
  t.same(r.clientEvents, [], 'no end/error/close on the client');
  t.same(r.serverEvents, [], 'no end/error on the restored server sockets');
  t.equal(r.outRsts, 0, 'no RST sent in the namespace');
  t.equal(r.estabResets, 100, 'each released source counts once in EstabResets (no packet)');
  t.ok(r.imagesWith.recv > 0 && r.imagesWith.sentUnacked > 0, 'checkpoints did land with bytes in the queues');
  t.ok(r.elapsedMs < scaled(45_000), 'well within the time budget');
});
