// The app runs unprivileged (no capability; as nobody when the checkout allows) next to
// tcp-repair-helper holding CAP_NET_ADMIN only, in a fresh network namespace: checkpoint,
// restore, resume and release work, and so does the 100-restores mid-stream test. Without the
// helper every call fails with an error that says what is missing; with a helper configured
// but not running, the error says that.
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createNetns } from '../helpers/netns.js';
import { REPO, socketDir, startHelper, unprivileged } from '../helpers/unprivileged.js';
import { scaled } from '../helpers/time-scale.js';

const FIXTURES = path.join(REPO, 'test', 'fixtures');

function runApp(ns: string, script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60000): Promise<Record<string, unknown>> {
  const command = ['ip', 'netns', 'exec', ns, ...unprivileged().app, process.execPath, path.join(FIXTURES, script), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd: REPO });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), scaled(timeoutMs)); // a hang guard (time-scale.ts)
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
      } catch {
        reject(new Error(`${script} exited ${code}: ${err}\n${out}`));
      }
    });
  });
}

async function withHelper(t: Tap.Test) {
  const ns = createNetns('tcprup');
  t.teardown(() => ns.remove());
  const socket = path.join(socketDir(t), 'helper.sock');
  await startHelper(t, { ns: ns.name, socket });
  return { ns: ns.name, env: { TCP_REPAIR_HELPER: socket }, counter: ns.counter };
}

t.test('checkpoint, restore, resume and release, unprivileged, with the helper', async (t) => {
  const { ns, env } = await withHelper(t);
  const r = await runApp(ns, 'unprivileged-cr.mjs', [], env);
  t.comment(`app ran as uid ${r.uid}`);
  t.equal(r.uid, unprivileged().uid);
  t.equal(Number.parseInt(String(r.capEff), 16), 0, 'the app has no capability at all');
  t.equal(r.netAdmin, false);
  t.equal(r.error, undefined, `no error${r.error ? `: ${JSON.stringify(r.error)}` : ''}`);
  t.equal(r.queued, 'queued before the checkpoint', 'the image carried the unread bytes');
  t.same(r.afterRestore, ['queued before the checkpointrestored-up', 'restored-down'], 'the restored socket delivers the queued bytes, then carries bytes both ways');
  t.same(r.afterResume, ['resumed-up', 'resumed-down'], 'a resumed socket too');
  t.equal(r.released, true);
});

t.test('100 restores mid-stream, 8 MiB each way, unprivileged with the helper', async (t) => {
  const { ns, env } = await withHelper(t);
  const r = await runApp(ns, 'stream-restores.mjs', ['100', String(8 * 1024 * 1024)], env);
  t.comment(`elapsed ${r.elapsedMs} ms; checkpoint median ${(r.checkpointMs as { median: number }).median} ms; restore median ${(r.restoreMs as { median: number }).median} ms`);
  t.equal(r.clientGot, r.size, 'client received 8 MiB');
  t.equal(r.serverGot, r.size, 'server received 8 MiB');
  t.ok(r.clientOk && r.serverOk, 'sha256 matches both ways');
  t.same(r.clientEvents, [], 'no end/error/close on the client');
  t.same(r.serverEvents, [], 'no end/error on the restored sockets');
  t.equal(r.outRsts, 0, 'no RST sent');
});

t.test('without the helper: a clear error, and the socket carries on', async (t) => {
  const ns = createNetns('tcprup');
  t.teardown(() => ns.remove());
  const r = await runApp(ns.name, 'unprivileged-cr.mjs', [], {});
  const e = r.error as { code: string; message: string };
  t.equal(e.code, 'EPERM');
  t.match(e.message, /lacks CAP_NET_ADMIN; grant it, or run tcp-repair-helper and call configureRepairHelper/, `says what is missing: ${e.message}`);
});

t.test('helper configured but not running: a clear error', async (t) => {
  const ns = createNetns('tcprup');
  t.teardown(() => ns.remove());
  const r = await runApp(ns.name, 'unprivileged-cr.mjs', [], { TCP_REPAIR_HELPER: '/nonexistent/tcp-repair-helper.sock' });
  const e = r.error as { code: string; message: string };
  t.equal(e.code, 'ERR_REPAIR_HELPER');
  t.match(e.message, /repair helper at \/nonexistent\/tcp-repair-helper\.sock does not answer \(connect\(AF_UNIX\) ENOENT\)/, e.message);
});
