import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createTopology, run, sweepStale, type HostRole, type Topology } from 'tcp-repair/topology';
import { scaled } from './helpers/time-scale.js';

const PORT = 7000;

async function namespaceNames(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter(Boolean);
}

/** A one-line TCP server on the service address that answers with the host's role. */
function serveRole(topology: Topology, role: HostRole): void {
  topology.spawnIn(role, 'socat', [`TCP4-LISTEN:${PORT},fork,reuseaddr,bind=${topology.service.ipv4}`, `SYSTEM:echo ${role}`]);
  topology.spawnIn(role, 'socat', [`TCP6-LISTEN:${PORT},fork,reuseaddr,ipv6only=1,bind=[${topology.service.ipv6}]`, `SYSTEM:echo ${role}`]);
}

/** Connects from the client to the service address; resolves with the role that answered. */
async function whoAnswers(topology: Topology, family: 4 | 6): Promise<{ role: string; ms: number }> {
  const target = family === 4 ? `TCP4:${topology.service.ipv4}:${PORT}` : `TCP6:[${topology.service.ipv6}]:${PORT}`;
  // Hang guards, stretched in emulated guests (test/helpers/time-scale.ts).
  const s = String(scaled(2000) / 1000);
  const { stdout, ms } = await topology.exec('client', 'socat', ['-t', '0.01', '-T', s, '-', `${target},connect-timeout=${s}`], { timeoutMs: scaled(5000) });
  return { role: stdout.trim(), ms };
}

async function waitUntilAnswered(topology: Topology, family: 4 | 6): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await whoAnswers(topology, family);
      return;
    } catch (error) {
      if (attempt > 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

for (const overlay of [undefined, 'vxlan'] as const) t.test(`the service address moves from host-a to host-b and the client follows at once (${overlay ?? 'underlay'})`, async (t) => {
  const topology = await createTopology({ prefix: 'toptest', ipv6: true, overlay });
  t.teardown(() => topology.destroy());
  // host-b listens on the service address before it owns it, as a migration target does.
  await topology.prepareToReceive('host-b');
  serveRole(topology, 'host-a');
  serveRole(topology, 'host-b');
  await waitUntilAnswered(topology, 4);
  await waitUntilAnswered(topology, 6);

  for (const family of [4, 6] as const) t.equal((await whoAnswers(topology, family)).role, 'host-a', `IPv${family} reaches host-a first`);
  const macB = await topology.macAddress('host-b');
  t.not((await topology.neighbour('client', topology.service.ipv4))?.lladdr, macB, 'client knows host-a for the address');

  const timings = await topology.moveServiceAddress('host-a', 'host-b');
  t.equal(topology.owner, 'host-b');
  t.equal((await topology.neighbour('client', topology.service.ipv4))?.lladdr, macB, 'client IPv4 neighbour entry points at host-b');
  t.equal((await topology.neighbour('client', topology.service.ipv6!))?.lladdr, macB, 'client IPv6 neighbour entry points at host-b');
  for (const family of [4, 6] as const) {
    const answer = await whoAnswers(topology, family);
    t.equal(answer.role, 'host-b', `IPv${family} reaches host-b after the move`);
    // "At once": not after the neighbour entry expires (the silent move below shows the client
    // keeps the old MAC). The bound includes spawning socat, so it stretches in emulated guests.
    t.ok(answer.ms < scaled(1000), `IPv${family} first connection after the move took ${answer.ms.toFixed(1)} ms (spawn included)`);
  }
  t.comment(`${overlay ?? 'underlay'} move: remove ${timings.remove.toFixed(1)} ms, add ${timings.add.toFixed(1)} ms, announce ${timings.announce.toFixed(1)} ms, total ${timings.total.toFixed(1)} ms`);
  await t.rejects(topology.moveServiceAddress('host-a', 'host-b'), /service address is on host-b/);
});

t.test('loss injection and reset counting work inside one namespace', async (t) => {
  const topology = await createTopology({ prefix: 'toptest', ipv6: false });
  t.teardown(() => topology.destroy());
  // Nothing listens on host-a's port 9: each connection attempt draws one RST.
  const before = await topology.countResets('host-a');
  await t.rejects(topology.exec('client', 'socat', ['-T', '1', '-', `TCP4:${topology.service.ipv4}:9,connect-timeout=1`]));
  t.equal(await topology.countResets('host-a'), before + 1, 'one RST counted in host-a (TcpOutRsts)');
  t.equal(await topology.countResets('host-b'), 0, 'host-b sent none');

  await topology.injectLoss('host-a', 100, 'in');
  const started = performance.now();
  await t.rejects(topology.exec('client', 'socat', ['-T', '1', '-', `TCP4:${topology.service.ipv4}:9,connect-timeout=0.3`]), 'no answer with 100 % loss');
  t.ok(performance.now() - started >= 250, 'the attempt timed out rather than being refused');
  t.equal(await topology.countResets('host-a'), before + 1, 'the dropped SYN drew no RST');
  await topology.clearLoss('host-a');
  await topology.clearLoss('host-a'); // idempotent
  await t.rejects(topology.exec('client', 'socat', ['-T', '1', '-', `TCP4:${topology.service.ipv4}:9,connect-timeout=1`]));
  t.equal(await topology.countResets('host-a'), before + 2, 'answers again once the loss is cleared');
});

t.test('destroy removes every namespace and can be called twice', async (t) => {
  const topology = await createTopology({ prefix: 'toptest' });
  t.ok((await namespaceNames()).includes(topology.client.ns));
  topology.destroy();
  topology.destroy();
  const left = await namespaceNames();
  t.same(topology.namespaces.filter((ns) => left.includes(ns)), [], 'no namespace left');
});

const fixture = fileURLToPath(new URL('./fixtures/topology-crash.mjs', import.meta.url));

async function crashChild(mode: 'throw' | 'signal' | 'hang', prefix: string): Promise<{ namespaces: string[]; code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, [fixture, mode, prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const namespaces = JSON.parse(line.toString()) as string[];
  if (mode === 'signal') child.kill('SIGTERM');
  if (mode === 'hang') child.kill('SIGKILL');
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return { namespaces, code, signal };
}

t.test('namespaces never leak when the owning process dies', async (t) => {
  for (const mode of ['throw', 'signal'] as const) {
    const { namespaces, code, signal } = await crashChild(mode, 'crashtest');
    t.ok(code !== 0 || signal !== null, `${mode}: the child failed (code ${code}, signal ${signal})`);
    t.equal(namespaces.length, 4);
    const left = await namespaceNames();
    t.same(namespaces.filter((ns) => left.includes(ns)), [], `${mode}: the exit hook removed them`);
  }
  // SIGKILL runs no hook: the namespaces stay until sweepStale finds their owner dead.
  const { namespaces } = await crashChild('hang', 'sweeptest');
  t.ok(namespaces.every((ns) => ns.startsWith('sweeptest-')));
  t.same((await sweepStale('sweeptest')).sort(), [...namespaces].sort(), 'sweepStale removed the dead run');
  const left = await namespaceNames();
  t.same(namespaces.filter((ns) => left.includes(ns)), [], 'nothing left after the sweep');
});

t.test('without an announcement the client keeps the old MAC; the tool fallback updates it', async (t) => {
  const topology = await createTopology({ prefix: 'toptest', ipv6: true });
  t.teardown(() => topology.destroy());
  serveRole(topology, 'host-a');
  await waitUntilAnswered(topology, 4);
  await waitUntilAnswered(topology, 6);
  const [macA, macB] = [await topology.macAddress('host-a'), await topology.macAddress('host-b')];
  await topology.moveServiceAddress('host-a', 'host-b', { announce: 'none' });
  t.equal((await topology.neighbour('client', topology.service.ipv4))?.lladdr, macA, 'IPv4: still host-a after a silent move');
  t.equal((await topology.neighbour('client', topology.service.ipv6!))?.lladdr, macA, 'IPv6: still host-a after a silent move');
  const timings = await topology.moveServiceAddress('host-b', 'host-a', { announce: 'tools' });
  await topology.moveServiceAddress('host-a', 'host-b', { announce: 'tools' });
  t.equal((await topology.neighbour('client', topology.service.ipv4))?.lladdr, macB, 'IPv4: arping -U moved the entry');
  t.equal((await topology.neighbour('client', topology.service.ipv6!))?.lladdr, macB, 'IPv6: ndisc6 -s moved the entry');
  t.comment(`tools announcement took ${timings.announce.toFixed(0)} ms (arping waits one interval after its frame)`);
});
