/**
 * Running commands inside a network namespace. Everything goes through `ip netns exec` (or
 * `ip -n` for ip itself, which skips the mount-namespace setup and is faster), so a test never
 * needs to move the Node process itself into a namespace.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A finished command's output and duration. */
export interface RunResult {
  stdout: string;
  stderr: string;
  /** Wall time of the command, spawn included: the cost a caller really pays. */
  ms: number;
}

/** A command that failed: keeps the command line and its stderr, so a test log says what broke. */
export class CommandError extends Error {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(command: string, exitCode: number | null, stderr: string, cause?: unknown) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim() || String(cause ?? '')}`);
    this.name = 'CommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Options of {@link run}, {@link execIn}. */
export interface RunOptions {
  /** Kills the command after this long; default 10 s, so a stuck tool cannot hang a test. */
  timeoutMs?: number;
  /** Text written to the command's standard input (e.g. an `ip -batch -` script). */
  input?: string;
  /** Environment of the command (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** Runs a command in the current (root) namespace. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const line = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: options.timeoutMs ?? 10_000, maxBuffer: 16 << 20, env: options.env ?? process.env }, (error, stdout, stderr) => {
      const ms = performance.now() - started;
      if (error) {
        const code = typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : null;
        reject(new CommandError(line, code, String(stderr), error));
      } else resolve({ stdout: String(stdout), stderr: String(stderr), ms });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command inside network namespace `ns`. */
export function execIn(ns: string, cmd: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], options);
}

/** Runs `ip` commands inside `ns`, one per line, in a single process (`ip -n NS -batch -`). */
export function ipBatch(ns: string | null, lines: readonly string[]): Promise<RunResult> {
  const nsArgs = ns === null ? [] : ['-n', ns];
  return run('ip', [...nsArgs, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** Starts a long-running command inside `ns` (a server, a client); the caller owns the child. */
export function spawnIn(ns: string, cmd: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
}
