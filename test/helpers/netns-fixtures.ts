/**
 * Throw-away network namespaces for tests that must see every packet (RST counters) or need a
 * real link (veth, MTU 1500). Each is deleted in teardown, even when the test fails. Traffic
 * inside uses only 198.18.0.0/15 and fd00::/8.
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

let counter = 0;

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** `ip` with arguments; throws with stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates a namespace with loopback up; deleted in t.teardown. */
export function createNetns(t: TeardownHost, tag: string): string {
  const name = `tcpr-ck-${tag}-${process.pid}-${counter++}`;
  ip('netns', 'add', name);
  t.teardown(() => {
    try {
      ip('netns', 'del', name);
    } catch {
      // already gone
    }
  });
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

/** Two namespaces joined by a veth pair (MTU 1500): a has 198.18.0.1/24, b has 198.18.0.2/24. */
export function createVethPair(t: TeardownHost, tag: string): { a: string; b: string; addrA: string; addrB: string } {
  const a = createNetns(t, `${tag}a`);
  const b = createNetns(t, `${tag}b`);
  ip('link', 'add', 'tcprck0', 'netns', a, 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'tcprck1', 'netns', b, 'mtu', '1500');
  ip('-n', a, 'addr', 'add', '198.18.0.1/24', 'dev', 'tcprck0');
  ip('-n', b, 'addr', 'add', '198.18.0.2/24', 'dev', 'tcprck1');
  ip('-n', a, 'link', 'set', 'tcprck0', 'up');
  ip('-n', b, 'link', 'set', 'tcprck1', 'up');
  return { a, b, addrA: '198.18.0.1', addrB: '198.18.0.2' };
}

export const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/**
 * Runs `node test/fixtures/<script>` inside a namespace and returns the JSON object printed on
 * its last stdout line. Rejects with the child's stderr if it fails or outlives `timeoutMs`.
 */
export function runFixtureInNetns<T>(ns: string, script: string, args: string[] = [], timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(fixturesDir, script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${script} exited ${code ?? signal}: ${err}\n${out}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script} printed no JSON result: ${out}\n${err}`));
      }
    });
  });
}
