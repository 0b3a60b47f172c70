/** Leak checks after a run: namespaces, processes and file descriptors it must not leave behind. */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

export function namespacesLeft(names: readonly string[]): string[] {
  const listed = new Set(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]));
  return names.filter((n) => listed.has(n));
}

export function processesAlive(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}
