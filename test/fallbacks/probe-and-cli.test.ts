/**
 * The switch itself: TCP_REPAIR_DISABLE read at load (child processes), setDisabledFeatures() in
 * process, probe() and `tcp-repair probe` reporting forced-off features as EDISABLED, the JSON
 * listing every feature; and the CLI's own fallbacks (inspect --pid without pidfdGetfd, inspect
 * --repair without repairOffNoWindowProbe).
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { probe, setDisabledFeatures, disabledFeatures, FEATURE_NAMES, lowlevel, socketFd, type FeatureName } from 'tcp-repair';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'esm', 'cli.js');
const run = (args: string[], disable?: string) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, TCP_REPAIR_DISABLE: disable ?? '' } });

// Written out here, so a feature dropped from FEATURE_NAMES (or from probe) fails the test.
const ALL: FeatureName[] = [
  'tcpRepair', 'repairOptions', 'repairWindow', 'timestampSet', 'repairOffNoWindowProbe', 'queueRefill', 'queuePeek',
  'halfClosedRepair', 'ipv6', 'freebind', 'transparent', 'freezeFilter', 'filterGracePeriod', 'pidfdGetfd',
];

interface JsonFeature { name: string; available: boolean; code?: string; enables: string; fallback: string }

t.test('tcp-repair probe --json lists every feature, each with what it enables and its fallback', async (t) => {
  t.same([...FEATURE_NAMES], ALL, 'FEATURE_NAMES is the full list');
  const r = run(['probe', '--json']);
  t.equal(r.status, 0);
  const features = JSON.parse(r.stdout).features as JsonFeature[];
  t.same(features.map((f) => f.name), ALL, 'one entry per feature, in order');
  for (const f of features) {
    t.ok(f.available, `${f.name} available on this kernel, as root`);
    t.ok(f.enables.length > 10 && f.fallback.length > 10, `${f.name} says what it enables and its fallback`);
  }
});

t.test('TCP_REPAIR_DISABLE in a child: probe() and the CLI report those features EDISABLED, the rest available', async (t) => {
  const off = ['repairWindow', 'timestampSet', 'halfClosedRepair', 'freezeFilter'];
  const script = `import('tcp-repair').then(async (m) => console.log(JSON.stringify({ disabled: m.disabledFeatures(), report: await m.probe() })))`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...process.env, TCP_REPAIR_DISABLE: off.join(',') },
  });
  t.equal(child.status, 0, `child exit (stderr: ${child.stderr.trim()})`);
  const { disabled, report } = JSON.parse(child.stdout) as { disabled: string[]; report: { features: JsonFeature[] } };
  t.same(disabled, off, 'disabledFeatures() in the child');
  for (const f of report.features) {
    if (off.includes(f.name)) {
      t.equal(f.available, false, `${f.name}: unavailable`);
      t.equal(f.code, 'EDISABLED', `${f.name}: code EDISABLED`);
    } else {
      t.equal(f.available, true, `${f.name}: available`);
    }
  }
  const table = run(['probe'], 'ipv6 pidfdGetfd');
  t.equal(table.status, 0);
  t.match(table.stdout, /^ipv6\s+no \(EDISABLED\)\s+restore refuses IPv6 images/m, 'table: ipv6 off, with its fallback');
  t.match(table.stdout, /^pidfdGetfd\s+no \(EDISABLED\)/m, 'table: pidfdGetfd off (space-separated list)');
  t.match(table.stdout, /^repairWindow\s+yes/m, 'table: the others on');
});

t.test('an unknown name in TCP_REPAIR_DISABLE is a warning; the known ones still apply', async (t) => {
  const r = run(['probe', '--json'], 'bogusFeature,ipv6');
  t.equal(r.status, 0);
  t.match(r.stderr, /TCP_REPAIR_DISABLE: ignoring unknown feature name\(s\) bogusFeature/);
  const ipv6 = (JSON.parse(r.stdout).features as JsonFeature[]).find((f) => f.name === 'ipv6')!;
  t.equal(ipv6.code, 'EDISABLED');
});

t.test('setDisabledFeatures in process: probe follows it; unknown names throw and change nothing', async (t) => {
  t.teardown(() => setDisabledFeatures([]));
  t.same(disabledFeatures(), [], 'nothing off by default');
  setDisabledFeatures(['ipv6', 'queuePeek']);
  t.same(disabledFeatures(), ['queuePeek', 'ipv6'], 'listed in probe order');
  let report = await probe();
  const byName = (n: string) => report.features.find((f) => f.name === n)!;
  t.equal(byName('ipv6').code, 'EDISABLED');
  t.equal(byName('queuePeek').available, false);
  t.equal(byName('queueRefill').available, true);
  t.throws(() => setDisabledFeatures(['ipv6', 'nope' as FeatureName]), { name: 'TypeError', message: /unknown feature name\(s\) 'nope'; known: tcpRepair/ });
  t.same(disabledFeatures(), ['queuePeek', 'ipv6'], 'a rejected list changes nothing');
  setDisabledFeatures([]);
  report = await probe();
  t.equal(byName('ipv6').available, true, 'back on after setDisabledFeatures([])');
});

/** A child holding an idle loopback connection to `port`; resolves with its pid and fd. */
async function idleChild(t: Tap.Test, port: number): Promise<{ pid: number; fd: number }> {
  const child = spawn(process.execPath, ['-e', `const s=require('net').connect(${port},'127.0.0.1',()=>console.log(s._handle.fd));setInterval(()=>{},1000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill());
  const fd = Number(await new Promise<string>((r) => child.stdout!.once('data', (d) => r(String(d).trim()))));
  return { pid: child.pid!, fd };
}

t.test('inspect --pid without pidfdGetfd: refused, naming the feature', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const { pid, fd } = await idleChild(t, (server.address() as net.AddressInfo).port);
  t.equal(run(['inspect', '--pid', String(pid), '--fd', String(fd), '--json']).status, 0, 'works with the feature on');
  const r = run(['inspect', '--pid', String(pid), '--fd', String(fd)], 'pidfdGetfd');
  t.equal(r.status, 1, 'exits 1 with it off');
  t.match(r.stderr, /^tcp-repair: kernel feature 'pidfdGetfd' is unavailable \(forced off .*ERR_FEATURE_UNAVAILABLE/, 'one line naming the feature');
});

t.test('inspect --repair without repairOffNoWindowProbe: leaves repair with a window probe (one segment reaches the peer)', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const { pid, fd } = await idleChild(t, (server.address() as net.AddressInfo).port);
  const [peer] = await accepted;
  t.teardown(() => peer.destroy());
  const segsIn = () => lowlevel.tcpInfo(socketFd(peer)).segsIn!;
  const args = ['inspect', '--pid', String(pid), '--fd', String(fd), '--repair', '--json'];
  await new Promise((r) => setTimeout(r, 50));
  let before = segsIn();
  const quiet = run(args);
  t.equal(quiet.status, 0);
  t.type(JSON.parse(quiet.stdout).sequences.recv, 'number', 'sequences read');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(segsIn() - before, 0, 'with the feature: the peer received nothing');
  before = segsIn();
  const probed = run(args, 'repairOffNoWindowProbe');
  t.equal(probed.status, 0, `works with it off (stderr: ${probed.stderr.trim()})`);
  t.type(JSON.parse(probed.stdout).sequences.recv, 'number', 'sequences read');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(segsIn() - before, 1, 'with it off: the peer received one segment, the window probe');
});
