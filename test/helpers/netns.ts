/**
 * One-off network namespaces for tests that must count packets or run where nothing else
 * talks: `ip netns add` with a unique name, loopback up, deleted on teardown.
 */
import { execFileSync, spawn } from 'node:child_process';
import { scaled } from './time-scale.js';

let counter = 0;

export interface Netns {
  name: string;
  /** Runs a command inside the namespace and returns its stdout. */
  exec(command: string, args: string[]): string;
  /** Runs `node script` inside the namespace; resolves with its exit code and output. Kills it after `timeoutMs` (a hang guard, scaled: time-scale.ts). */
  node(script: string, args?: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** A kernel counter of the namespace (nstat -az NAME), e.g. 'TcpOutRsts'. */
  counter(name: string): number;
  remove(): void;
}

/** Creates a fresh namespace; register `ns.remove` with t.teardown. */
export function createNetns(prefix = 'tcprt'): Netns {
  const name = `${prefix}-${process.pid}-${++counter}-${Date.now() % 100000}`;
  execFileSync('ip', ['netns', 'add', name]);
  let removed = false;
  const ns: Netns = {
    name,
    exec(command, args) {
      return execFileSync('ip', ['netns', 'exec', name, command, ...args], { encoding: 'utf8' });
    },
    node(script, args = [], timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const child = spawn('ip', ['netns', 'exec', name, process.execPath, script, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`node ${script} in ${name} timed out; stderr: ${stderr}`));
        }, scaled(timeoutMs));
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    },
    counter(counterName) {
      // -a: absolute values, -z: print zero counters too, -s: do not touch nstat's history file.
      const out = ns.exec('nstat', ['-azs', counterName]);
      const line = out.split('\n').find((l) => l.startsWith(counterName + ' '));
      if (!line) throw new Error(`nstat has no counter ${counterName} in ${name}`);
      return Number(line.trim().split(/\s+/)[1]);
    },
    remove() {
      if (removed) return;
      removed = true;
      try {
        execFileSync('ip', ['netns', 'del', name]);
      } catch {
        // already gone
      }
    },
  };
  try {
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
  } catch (error) {
    ns.remove();
    throw error;
  }
  return ns;
}
