// Host-to-host moves under traffic between network namespaces (client, host-a, host-b), via the
// same code path as `tcp-repair demo`: sha256 streams and checked request/response, IPv4 and
// IPv6 connections side by side, no reset from any host.
import t from 'tap';
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { runDemo, waitForAccepted } from '../../dist/esm/demo/command.js';
import type { DemoReport } from '../../dist/esm/demo/report.js';

function checkStreams(t: Tap.Test, report: DemoReport, streams: number): void {
  const streamed = report.results.filter((r) => r.kind === 'stream');
  t.equal(streamed.length, streams, 'one result per stream');
  for (const [i, r] of streamed.entries()) {
    // What came back is compared with what this client sent, both ways, whatever the amount.
    t.ok(r.sent && r.sent.bytes > 0, `stream ${i} sent bytes (${r.sent?.bytes})`);
    t.equal(r.echoed?.bytes, r.sent?.bytes, `stream ${i}: every byte sent came back`);
    t.equal(r.echoed?.sha256, r.sent?.sha256, `stream ${i}: sha256 of the echo is the sha256 of what was sent`);
  }
}

for (const [connections, streams] of [[1, 1], [100, 20], [1000, 10]] as const) {
  t.test(`${connections} connection(s) move host-a -> host-b mid-traffic`, async (t) => {
    const report = await runDemo({ connections, streams, streamBytes: 2 * 1024 * 1024, ipv6: true, settleMs: 600 });
    t.equal(report.migration.error, undefined, 'migration reported no error');
    t.equal(report.migration.moved, connections, `all ${connections} connection(s) moved`);
    t.same(report.migration.stayed, [], 'none stayed behind');
    t.equal(report.results.length, connections);
    const failed = report.results.filter((r) => !r.ok);
    t.same(failed, [], 'every stream checksum and every answer verified');
    t.same(report.resets, { client: 0, 'host-a': 0, 'host-b': 0 }, 'no host sent a reset (move and traffic)');
    t.comment(`resets at the clients' close: ${JSON.stringify(report.resetsAtClose)}`);
    checkStreams(t, report, streams);
  });
}

t.test('100 connections move over a VXLAN overlay (service address on the overlay)', async (t) => {
  const report = await runDemo({ connections: 100, streams: 10, streamBytes: 1024 * 1024, ipv6: true, settleMs: 600, overlay: 'vxlan' });
  t.equal(report.migration.error, undefined, 'migration reported no error');
  t.equal(report.migration.moved, 100, 'all 100 connections moved');
  t.same(report.results.filter((r) => !r.ok), [], 'every stream checksum and every answer verified');
  t.same(report.resets, { client: 0, 'host-a': 0, 'host-b': 0 }, 'no host sent a reset');
  checkStreams(t, report, 10);
});

// The wait that keeps the demo from migrating before host-a accepted every client: the real
// host-a service process, real sockets on loopback.
t.test("the demo waits for host-a's accept count, and says so when it falls short", async (t) => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const config = { listen: ['127.0.0.1'], port, control: { host: '127.0.0.1', port: 1 }, key: '00'.repeat(32) };
  const service = fork(fileURLToPath(new URL('../../dist/esm/demo/service.js', import.meta.url)), ['a', JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    service.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    service.on('message', (m: { ready?: boolean; fatal?: string }) => (m.ready ? resolve() : m.fatal && reject(new Error(m.fatal))));
  });
  const connect = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve());
      socket.once('error', reject);
      sockets.push(socket);
    });

  for (let i = 0; i < 3; i++) await connect();
  await t.rejects(waitForAccepted(service, 5, 1000), /^host-a holds 3 of the 5 connections the clients made \(3 accepted\) after 1000 ms; not migrating/, 'three of five: a clear error');

  for (let i = 0; i < 2; i++) await connect();
  t.same(await waitForAccepted(service, 5, 5000), { total: 5, open: 5 }, 'all five accepted: the wait ends');

  // host-a reports the change by itself once it has seen the connection close.
  const closed = new Promise<void>((resolve) => {
    const onMessage = (m: { accepted?: { open: number } }) => m.accepted?.open === 4 && (service.off('message', onMessage), resolve());
    service.on('message', onMessage);
  });
  sockets.pop()!.destroy();
  await closed;
  await t.rejects(waitForAccepted(service, 5, 1000), /^host-a holds 4 of the 5 connections the clients made \(5 accepted\)/, 'a connection that closed does not count');
});
