/**
 * Running the app unprivileged next to tcp-repair-helper. The app runs as nobody (uid 65534,
 * no capabilities) when this checkout is readable by others, else as uid 0 with every
 * capability dropped (still unprivileged for the network: CapEff 0). The helper runs as the
 * same user with CAP_NET_ADMIN only. Helpers are started inside the given namespace and
 * killed in teardown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HELPER = path.join(REPO, 'build', 'Release', 'tcp-repair-helper');

export interface Unprivileged {
  uid: number;
  /** setpriv words that start the app without any capability. */
  app: string[];
  /** setpriv words that start the helper with CAP_NET_ADMIN only. */
  helper: string[];
}

let chosen: Unprivileged | undefined;

export function unprivileged(): Unprivileged {
  if (chosen) return chosen;
  const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const readable = spawnSync('setpriv', [...nobody, process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(path.join(REPO, 'dist', 'esm', 'index.js'))}); require('fs').accessSync(${JSON.stringify(HELPER)}, 1)`]).status === 0;
  const user = readable ? nobody : [];
  chosen = {
    uid: readable ? 65534 : 0,
    app: ['setpriv', ...user, '--bounding-set=-all', '--inh-caps=-all'],
    helper: ['setpriv', ...user, '--bounding-set=-all,+net_admin', '--inh-caps=-all,+net_admin', '--ambient-caps=-all,+net_admin'],
  };
  return chosen;
}

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** A directory the helper's user owns (the unprivileged user by default), for its socket. */
export function socketDir(t: TeardownHost, uid = unprivileged().uid): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tcp-repair-helper-'));
  chownSync(dir, uid, uid);
  chmodSync(dir, 0o700);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts tcp-repair-helper (inside `ns` if given); resolves once it listens. */
export async function startHelper(t: TeardownHost, options: { ns?: string; socket: string; args?: string[]; wrap?: string[] }): Promise<ChildProcess> {
  const wrap = options.wrap ?? unprivileged().helper;
  const command = [...(options.ns ? ['ip', 'netns', 'exec', options.ns] : []), ...wrap, HELPER, '--socket', options.socket, ...(options.args ?? [])];
  // Its log goes to a file: a test blocked in a synchronous helper call cannot drain a pipe.
  const log = path.join(mkdtempSync(path.join(tmpdir(), 'tcp-repair-helper-log-')), 'stderr');
  const logFd = openSync(log, 'w');
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const stderr = () => {
    try {
      return readFileSync(log, 'utf8');
    } catch {
      return '';
    }
  };
  t.teardown(() => {
    child.kill('SIGKILL');
    rmSync(path.dirname(log), { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`helper exited ${code}: ${stderr()}`));
    child.once('exit', onExit);
    child.stdout!.once('data', () => {
      child.off('exit', onExit);
      resolve();
    });
  });
  (child as ChildProcess & { stderrText: () => string }).stderrText = stderr;
  return child;
}
