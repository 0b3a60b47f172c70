/**
 * Namespace helpers for the checkpoint tests, built on test/helpers/netns.ts: a namespace tied
 * to a test's teardown, a veth pair with a real MTU-1500 link, and fixture scripts that report
 * one JSON result. Traffic inside uses only 198.18.0.0/15 and fd00::/8.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createNetns as createNamespace } from './netns.js';

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** `ip` with arguments; throws with stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const namespaces = new Map<string, ReturnType<typeof createNamespace>>();

/** Creates a namespace with loopback up, deleted in t.teardown; returns its name. */
export function createNetns(t: TeardownHost, tag: string): string {
  const ns = createNamespace(`tcpr-ck-${tag}`);
  namespaces.set(ns.name, ns);
  t.teardown(() => {
    ns.remove();
    namespaces.delete(ns.name);
  });
  return ns.name;
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
 * Runs `node test/fixtures/<script>` inside a namespace made by createNetns and returns the JSON
 * object printed on its last stdout line; rejects with the child's output if it fails.
 */
export async function runFixtureInNetns<T>(name: string, script: string, args: string[] = [], timeoutMs = 60_000): Promise<T> {
  const ns = namespaces.get(name);
  if (!ns) throw new Error(`namespace ${name} was not made by createNetns`);
  const { code, stdout, stderr } = await ns.node(path.join(fixturesDir, script), args, timeoutMs);
  if (code !== 0) throw new Error(`${script} exited ${code}: ${stderr}\n${stdout}`);
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${script} printed no JSON result: ${stdout}\n${stderr}`);
  }
}
