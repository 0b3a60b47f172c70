// Host-to-host moves under traffic between network namespaces (client, host-a, host-b), via the
// same code path as `tcp-repair demo`: sha256 streams and checked request/response, IPv4 and
// IPv6 connections side by side, no reset from any host.
import t from 'tap';
import { runDemo } from '../../dist/esm/demo/command.js';

for (const [connections, streams] of [[1, 1], [100, 20], [1000, 10]] as const) {
  t.test(`${connections} connection(s) move host-a -> host-b mid-traffic`, async (t) => {
    const report = await runDemo({ connections, streams, streamBytes: 2 * 1024 * 1024, ipv6: true, settleMs: 600 });
    t.equal(report.migration.error, undefined, 'migration reported no error');
    t.equal(report.migration.moved, connections, 'every connection moved');
    t.same(report.migration.stayed, [], 'none stayed behind');
    t.equal(report.results.length, connections);
    const failed = report.results.filter((r) => !r.ok);
    t.same(failed, [], 'every stream checksum and every answer verified');
    t.same(report.resets, { client: 0, 'host-a': 0, 'host-b': 0 }, 'no host sent a reset');
    const streamed = report.results.filter((r) => r.kind === 'stream');
    t.equal(streamed.length, streams);
    for (const r of streamed) t.equal(r.bytes, 2 * 2 * 1024 * 1024, 'each stream carried its bytes both ways');
  });
}

t.test('100 connections move over a VXLAN overlay (service address on the overlay)', async (t) => {
  const report = await runDemo({ connections: 100, streams: 10, streamBytes: 1024 * 1024, ipv6: true, settleMs: 600, overlay: 'vxlan' });
  t.equal(report.migration.error, undefined, 'migration reported no error');
  t.equal(report.migration.moved, 100, 'every connection moved');
  t.same(report.results.filter((r) => !r.ok), [], 'every stream checksum and every answer verified');
  t.same(report.resets, { client: 0, 'host-a': 0, 'host-b': 0 }, 'no host sent a reset');
});
