// Host-to-host migration with unprivileged apps: on host-a and host-b the soak host process
// (a service with live keyed streams, a receiver, migrate()) runs without any capability, each
// next to its own tcp-repair-helper holding CAP_NET_ADMIN only. Connections move back and forth
// with every byte verified and no reset, exactly as with privileged apps.
import t from 'tap';
import path from 'node:path';
import { SoakHarness } from '../../dist/esm/soak/harness.js';
import { HELPER, socketDir, unprivileged } from '../helpers/unprivileged.js';
import { namespacesLeft, processesAlive } from '../helpers/leftovers.js';
import { scaled } from '../helpers/time-scale.js';

t.test('20 moves back and forth, apps unprivileged, one helper per host', async (t) => {
  const dir = socketDir(t);
  const socketOf = (role: string) => path.join(dir, `${role}.sock`);
  const harness = await SoakHarness.create({
    connections: 6,
    prefix: 'unpriv',
    wrapHost: () => unprivileged().app,
    hostEnv: (role) => ({ TCP_REPAIR_HELPER: socketOf(role) }),
    beforeHost: async (topology, role) => {
      const [setpriv, ...words] = unprivileged().helper;
      const helper = topology.spawnIn(role, setpriv!, [...words, HELPER, '--socket', socketOf(role)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        helper.stdout!.once('data', () => resolve());
        helper.once('exit', (code) => reject(new Error(`helper exited ${code}`)));
      });
    },
  });
  const namespaces = harness.topology.namespaces;
  try {
    await harness.waitProgress();
    for (const role of ['host-a', 'host-b'] as const) {
      const status = await import('node:fs').then((fs) => fs.readFileSync(`/proc/${harness.pids.get(role)}/status`, 'utf8'));
      t.match(status, /^CapEff:\s*0+$/m, `${role}: the app has no capability`);
      t.match(status, new RegExp(`^Uid:\\s*${unprivileged().uid}\\s`, 'm'), `${role}: runs as uid ${unprivileged().uid}`);
    }
    for (let i = 0; i < 20; i++) {
      const move = await harness.move({ timeoutMs: scaled(5000), handback: true });
      t.equal(move.outcome.error, undefined, `move ${i + 1} ${move.from} -> ${move.to}${move.outcome.error ? `: ${move.outcome.error.message}` : ''}`);
      t.equal(move.outcome.moved, 6);
      await harness.waitProgress();
    }
    t.same(await harness.resets(), { in: 0, out: 0 }, 'no reset');
    const v = await harness.verifyAll();
    t.ok(v.ok, v.problems.join('; ') || `every byte intact both ways (${v.bytes} bytes)`);
  } finally {
    const pids = [...harness.pids.values()];
    await harness.close();
    t.same(namespacesLeft(namespaces), [], 'no namespace left');
    t.same(processesAlive(pids), [], 'no process left');
  }
});
