/**
 * The safety net: namespaces outlive the process that made them (they are bind mounts under
 * /run/netns), so every namespace is registered here until it is deleted, and deleted
 * synchronously when the process exits or is killed by a catchable signal. sweepStale() removes
 * what a SIGKILLed run left behind.
 *
 * Signals go through signal-exit: with several libraries each handling SIGTERM politely (each
 * re-raising only when it is the last listener), none re-raises and the process never dies; that
 * deadlock was seen under tap. signal-exit is the shared convention that avoids it.
 */
import { execFileSync } from 'node:child_process';
import { onExit } from 'signal-exit';
import type { ChildProcess } from 'node:child_process';
import { run } from './run.js';

const liveNamespaces = new Set<string>();
const liveChildren = new Set<ChildProcess>();
let hooksInstalled = false;

/** Names are `${prefix}-${pid}-${counter}-${role}`: the pid tells whether the owner still lives. */
export const NAME_PATTERN = /^([a-z][a-z0-9]*)-(\d+)-(\d+)-([a-z0-9-]+)$/;

export function registerNamespace(name: string): void {
  liveNamespaces.add(name);
  installHooks();
}

export function unregisterNamespace(name: string): void {
  liveNamespaces.delete(name);
}

/** Children started in our namespaces: killed before the namespaces go, so none keeps one alive. */
export function registerChild(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  installHooks();
}

export function killChildren(children: Iterable<ChildProcess>): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    liveChildren.delete(child);
  }
}

/** Deletes namespaces with one `ip -force -batch` (continues past names already gone). Sync: usable in 'exit'. */
export function deleteNamespacesSync(names: Iterable<string>): void {
  const lines = [...names].map((name) => `netns delete ${name}`);
  if (lines.length === 0) return;
  try {
    execFileSync('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'], timeout: 10_000 });
  } catch {
    // -force still exits non-zero if one line failed (name already gone): nothing more to do.
  }
}

function cleanupEverythingSync(): void {
  killChildren([...liveChildren]);
  deleteNamespacesSync(liveNamespaces);
  liveNamespaces.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  onExit(() => {
    cleanupEverythingSync();
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes namespaces named `${prefix}-PID-…` whose PID no longer runs (a crashed or SIGKILLed run).
 * Namespaces of live processes are kept: parallel test files share a prefix. Returns the names removed.
 */
export async function sweepStale(prefix: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  const stale: string[] = [];
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = NAME_PATTERN.exec(name);
    if (!match || match[1] !== prefix) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && !isAlive(pid)) stale.push(name);
  }
  deleteNamespacesSync(stale);
  return stale;
}
