// A client nobody here wrote stays connected through a host-to-host move: socat streaming
// (sha256 of everything sent vs everything echoed back through the moved connection).
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { runDemo } from '../../dist/esm/demo/command.js';
import type { Topology } from '../../dist/esm/topology/index.js';
import { scaled, timeScale } from '../helpers/time-scale.js';

function socatStream(address: string) {
  return async (topology: Topology, port: number) => {
    const target = address.includes(':') ? `TCP6:[${address}]:${port}` : `TCP4:${address}:${port}`;
    const child = topology.spawnIn('client', 'socat', ['-b', '65536', '-', target], { stdio: ['pipe', 'pipe', 'pipe'] });
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let sentBytes = 0;
    let receivedBytes = 0;
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d: Buffer) => { received.update(d); receivedBytes += d.length; });
    child.stdin!.write('STREAM\n');
    const pump = setInterval(() => {
      const chunk = randomBytes(8192);
      sent.update(chunk);
      sentBytes += chunk.length;
      child.stdin!.write(chunk);
    }, 5);
    while (receivedBytes === 0) await new Promise((r) => setTimeout(r, 10));
    return async () => {
      clearInterval(pump);
      const deadline = Date.now() + scaled(20000); // a hang guard (time-scale.ts)
      while (receivedBytes < sentBytes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const alive = child.exitCode === null;
      child.kill();
      const ok = alive && receivedBytes === sentBytes && sent.digest('hex') === received.digest('hex');
      return { kind: 'stream' as const, ok, bytes: sentBytes + receivedBytes, stall: 0, error: ok ? undefined : `socat ${alive ? 'alive' : 'exited'}, echoed ${receivedBytes}/${sentBytes} ${stderr}` };
    };
  };
}

t.test('socat streams through the move, IPv4 and IPv6', async (t) => {
  const report = await runDemo({
    connections: 2,
    streams: 1,
    streamBytes: 512 * 1024,
    ipv6: true,
    settleMs: 600,
    extraClients: [socatStream('198.18.0.100'), socatStream('fd00::100')],
  });
  t.equal(report.migration.moved, 4, 'the socat connections moved with the others');
  const socat = report.results.slice(2);
  t.equal(socat.length, 2);
  for (const r of socat) t.ok(r.ok, r.error ?? `socat stream intact (${r.bytes} bytes)`);
  t.same(report.resets, { client: 0, 'host-a': 0, 'host-b': 0 }, 'no host sent a reset');
});

t.test('curl keep-alive: the next requests on the same connection are answered by host-b', async (t) => {
  let output = '';
  let log = '';
  const report = await runDemo({
    connections: 1,
    streams: 0,
    streamBytes: 0,
    ipv6: true,
    settleMs: 1000,
    extraClients: [
      async (topology, port) => {
        // Three requests 2 s apart over one connection; the move happens between the first two.
        // In emulated guests the move itself takes longer: the gap stretches with it (time-scale.ts).
        const child = topology.spawnIn('client', 'curl', ['-sv', '--rate', `${Math.max(1, Math.round(30 / timeScale))}/m`, `http://198.18.0.100:${port}/one`, `http://198.18.0.100:${port}/two`, `http://198.18.0.100:${port}/three`], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout!.on('data', (d) => (output += d));
        child.stderr!.on('data', (d) => (log += d));
        while (!output.includes('/one')) await new Promise((r) => setTimeout(r, 10));
        return async () => {
          const code = child.exitCode ?? (await new Promise<number | null>((r) => child.once('exit', r)));
          return { kind: 'rr' as const, ok: code === 0, bytes: output.length, stall: 0, error: code === 0 ? undefined : `curl exited ${code}: ${log}` };
        };
      },
    ],
  });
  t.equal(report.migration.moved, 2, 'the curl connection moved');
  t.ok(report.results[1]?.ok, report.results[1]?.error ?? 'curl succeeded');
  t.match(output, /served by host-a: \/one/, 'first answer from host-a');
  t.match(output, /served by host-b: \/two/, 'second answer from host-b, same connection');
  t.match(output, /served by host-b: \/three/);
  t.equal((log.match(/Connected to/g) ?? []).length, 1, 'curl connected once');
  t.match(log, /Re-using existing connection/, 'curl reused the moved connection');
  t.same(report.resets, { client: 0, 'host-a': 0, 'host-b': 0 }, 'no host sent a reset');
});
