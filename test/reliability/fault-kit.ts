/**
 * Shared steps of the fault-injection tests: real processes in network namespaces (the soak
 * harness: host-a serving live keyed streams, host-b a real receiver), one fault per test, and
 * the same verdict every time: a clear error, every connection rolled back to host-a, no socket
 * left frozen or half-restored on either host, every client still working with every byte
 * intact both ways, no reset, and nothing (namespace, process) left behind.
 */
import type { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { SoakHarness, sleep, type HarnessOptions, type MoveResult } from '../../dist/esm/soak/harness.js';
import { namespacesLeft, processesAlive } from '../helpers/leftovers.js';
import { scaled } from '../helpers/time-scale.js';

export const CONNECTIONS = 6;

export async function withHarness(t: Test, options: Partial<HarnessOptions>, body: (h: SoakHarness) => Promise<void>): Promise<void> {
  const harness = await SoakHarness.create({ connections: CONNECTIONS, prefix: 'fault', receiverTimeoutMs: scaled(3000), ...options });
  try {
    await harness.waitProgress();
    await body(harness);
  } finally {
    const namespaces = harness.topology.namespaces;
    const pids = [...harness.pids.values()];
    await harness.close();
    t.same(namespacesLeft(namespaces), [], 'no namespace left');
    t.same(processesAlive(pids), [], 'no process left');
  }
}

/** Host fds before a move: compared after the rollback, once sessions have ended. */
export async function fdsOf(h: SoakHarness, role: 'host-a' | 'host-b'): Promise<number> {
  return (await h.nodeStatus(role)).fds;
}

export async function fdsBackTo(h: SoakHarness, role: 'host-a' | 'host-b', baseline: number, timeoutMs = 6000): Promise<number> {
  const deadline = Date.now() + scaled(timeoutMs);
  let fds = await fdsOf(h, role);
  while (fds > baseline && Date.now() < deadline) {
    await sleep(100);
    fds = await fdsOf(h, role);
  }
  return fds;
}

export function isAlive(h: SoakHarness, role: 'host-a' | 'host-b'): boolean {
  const child = h.node(role);
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves with the signal that ended the host process (waits for it to be reaped). */
export async function killedBy(h: SoakHarness, role: 'host-a' | 'host-b', timeoutMs = 3000): Promise<string | null> {
  const child = h.node(role);
  if (isAlive(h, role)) await Promise.race([new Promise((r) => child.once('exit', r)), sleep(scaled(timeoutMs))]);
  return child.signalCode;
}

/**
 * The verdict after a move that had to fail: the error is the expected one, nothing moved,
 * nothing stays frozen on host-a, host-b (if it survived) holds no copy, the address is on
 * host-a, and every connection carries on with every byte intact and no reset.
 */
export async function expectRolledBack(t: Test, h: SoakHarness, result: MoveResult, expected: RegExp, baseline: { a: number; b?: number }): Promise<void> {
  const o = result.outcome;
  t.ok(o.error, `the move failed: ${o.error?.code}: ${o.error?.message}`);
  t.match(`${o.error?.code}: ${o.error?.message}`, expected, 'with the expected error');
  t.equal(o.moved, 0, 'nothing moved');
  t.equal(o.stayed.length, CONNECTIONS, 'every connection stayed on host-a');
  t.equal(o.held, 0, 'no socket left frozen on host-a');
  t.equal(h.owner, 'host-a', 'the service address is on host-a');
  t.equal(await fdsBackTo(h, 'host-a', baseline.a), baseline.a, 'host-a holds no more fds than before');
  if (baseline.b !== undefined && isAlive(h, 'host-b')) {
    t.equal(await fdsBackTo(h, 'host-b', baseline.b), baseline.b, 'host-b discarded every copy (fds back to before)');
  }
  try {
    await h.waitProgress();
  } catch (error) {
    t.comment(`resets ${JSON.stringify(await h.resets())}, client ${JSON.stringify((await h.clientStatus()).map((c) => c.error ?? 'ok'))}`);
    throw error;
  }
  t.pass('every connection carries new bytes both ways after the failure');
  const resets = await h.resets();
  t.same(resets, { in: 0, out: 0 }, 'no reset to or from the client');
  const v = await h.verifyAll();
  t.ok(v.ok, v.problems.join('; ') || `every byte intact both ways (${v.bytes} bytes)`);
}

/**
 * The verdict after a move that had to succeed despite the fault: no error, every connection
 * moved, and each then carries new bytes both ways with no reset and every byte intact.
 * `noError` names why there is none.
 */
export async function expectMovedIntact(t: Test, h: SoakHarness, result: MoveResult, noError = 'no error'): Promise<void> {
  t.equal(result.outcome.error, undefined, noError);
  t.equal(result.outcome.moved, CONNECTIONS, 'every connection moved');
  await h.waitProgress();
  t.same(await h.resets(), { in: 0, out: 0 }, 'no reset');
  const v = await h.verifyAll();
  t.ok(v.ok, v.problems.join('; ') || 'every byte intact');
}

/** Runs nft inside a namespace (a cut of the control connection). */
export function nft(ns: string, script: string): void {
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script + '\n' });
}

export const CUT_TABLE = 'tcp_repair_cut';
export function cutScript(port: number): string {
  return [
    `add table inet ${CUT_TABLE}`,
    `add chain inet ${CUT_TABLE} in { type filter hook input priority -30; }`,
    `add chain inet ${CUT_TABLE} out { type filter hook output priority -30; }`,
    `add rule inet ${CUT_TABLE} in tcp dport ${port} drop`,
    `add rule inet ${CUT_TABLE} out tcp sport ${port} drop`,
  ].join('\n');
}
