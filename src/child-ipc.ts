/**
 * Waiting for a forked child's report: the demo's and the soak's hosts and clients talk to the
 * process that started them over the IPC channel, each message an object with named fields.
 */
import type { ChildProcess } from 'node:child_process';

/**
 * How much slower than usual this machine runs, for the demo's and the soak's hang guards (their
 * waits for their own processes and streams): TCP_REPAIR_TIME_SCALE, which the kernel matrix sets
 * in its emulated (qemu TCG) guests, where every step takes 10-20 times longer. 1 otherwise. It
 * only stretches how long a stuck step is waited for; nothing measured or checked changes.
 */
export const hangGuardScale = Math.max(1, Number(process.env.TCP_REPAIR_TIME_SCALE) || 1);

/** A hang guard's time limit in ms, stretched by hangGuardScale. */
export const hangGuardMs = (ms: number): number => Math.round(ms * hangGuardScale);

/** A child's message: named fields; `fatal` says the child failed (and why). */
export interface ChildMessage {
  fatal?: string;
}

export interface WaitOptions<V> {
  /** Default 30 s; stretched by hangGuardScale. */
  timeoutMs?: number;
  /** Resolve only on a value this accepts (default: the first message carrying the key). */
  until?: (value: V) => boolean;
  /** The error on timeout (default: "timed out waiting for <what>"). */
  timeoutMessage?: () => string;
}

/**
 * Resolves with field `key` of the next message from `child` that carries it (and that `until`
 * accepts). Rejects on a `fatal` message, when the child exits or already has, and on timeout;
 * `what` names the wait in those errors.
 */
export function waitForMessage<M extends ChildMessage, K extends keyof M & string>(
  child: ChildProcess,
  key: K,
  what: string,
  options: WaitOptions<NonNullable<M[K]>> = {},
): Promise<NonNullable<M[K]>> {
  // (A field sent as null resolves with null: the key is there.)
  const { timeoutMs = 30000, until = () => true, timeoutMessage = () => `timed out waiting for ${what}` } = options;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(timeoutMessage())), hangGuardMs(timeoutMs));
    const onMessage = (m: M) => {
      const value = m[key];
      if (m.fatal) done(new Error(`${what}: ${m.fatal}`));
      else if (value !== undefined && until(value as NonNullable<M[K]>)) done(undefined, value as NonNullable<M[K]>);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`${what}: process exited (${code ?? signal})`));
    function done(error?: Error, value?: NonNullable<M[K]>) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(value!);
    }
    if (child.exitCode !== null || child.signalCode !== null) return done(new Error(`${what}: process already exited`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
