/**
 * Commands run as a user would from a fresh shell: without the npm_* variables that the outer
 * `npm test` sets (prefix, lifecycle, config), which would otherwise steer an inner npm or tap.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { scaled } from './time-scale.js';

export const userEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs to completion (default limit 400 s, a hang guard scaled in emulated guests) and returns exit status and output. */
export function runAsUser(cmd: string, args: string[], options: SpawnSyncOptions = {}): Ran {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: userEnv, timeout: scaled(400_000), maxBuffer: 64 << 20, ...options });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) + (r.error ? `\n${r.error.message}` : '') };
}
