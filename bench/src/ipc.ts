/** Waiting for one message of a child process (IPC) or one line of its stdout, with a timeout. */
import type { ChildProcess } from 'node:child_process';
import { hangGuardMs } from '../../dist/esm/child-ipc.js';
import type { LineReader } from './lines.js';

// Both waits are hang guards: stretched on slow (emulated) machines, as the demo's (hangGuardMs).
export function nextMessage<T>(child: ChildProcess, key: string, what: string, timeoutMs: number): Promise<T> {
  timeoutMs = hangGuardMs(timeoutMs);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    const onMessage = (message: Record<string, unknown>) => {
      if (typeof message.fatal === 'string') done(new Error(`${what}: ${message.fatal}`));
      else if (message[key] !== undefined) done(undefined, message[key] as T);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`${what}: process exited (${code ?? signal})`));
    function done(error?: Error, value?: T) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(value as T);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

export async function nextLine(reader: LineReader, what: string, timeoutMs: number): Promise<string> {
  timeoutMs = hangGuardMs(timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    const line = await Promise.race([reader.next(), timeout]);
    if (line === null) throw new Error(`${what}: the process closed its output`);
    return line;
  } finally {
    clearTimeout(timer);
  }
}
