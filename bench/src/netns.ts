/**
 * A throw-away network namespace per measurement: its own loopback, its own port range and
 * TCP counters, no TIME_WAIT left over from the run before. Registered with the topology's
 * safety net so it is deleted even if the bench is interrupted.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deleteNamespacesSync, registerChild, registerNamespace, unregisterNamespace } from '../../dist/esm/topology/cleanup.js';

let counter = 0;

export class Namespace {
  readonly name: string;
  private readonly children = new Set<ChildProcess>();

  constructor(role: string) {
    // The topology's naming scheme (prefix-pid-counter-role), so sweepStale() recognises it.
    this.name = `bench-${process.pid}-${++counter}-${role}`;
    registerNamespace(this.name);
    execFileSync('ip', ['netns', 'add', this.name]);
    execFileSync('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
  }

  /** A Node script of dist/bench inside the namespace, with an IPC channel. */
  fork(script: string, args: string[] = [], execArgv: string[] = []): ChildProcess {
    return this.track(forkIn(this.name, script, args, execArgv));
  }

  /** Any program inside the namespace, driven through its stdin and stdout. */
  spawn(program: string, args: string[] = []): ChildProcess {
    return this.track(spawn('ip', ['netns', 'exec', this.name, program, ...args], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  private track(child: ChildProcess): ChildProcess {
    registerChild(child);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  destroy(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    deleteNamespacesSync([this.name]);
    unregisterNamespace(this.name);
  }
}

/**
 * A Node script of dist/bench inside namespace `ns` (through `ip netns exec`), with IPC. With
 * TCP_REPAIR_BENCH_PROFILE=DIR (`npm run bench -- --profile DIR`) it writes a CPU profile there
 * when it exits normally.
 */
export function forkIn(ns: string, script: string, args: string[] = [], execArgv: string[] = []): ChildProcess {
  const profileDir = process.env.TCP_REPAIR_BENCH_PROFILE;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${script}${args[0] && args[0].length < 8 ? '-' + args[0] : ''}-${Date.now()}.cpuprofile`] : [];
  const child = fork(benchScript(script), args, {
    execPath: 'ip',
    execArgv: ['netns', 'exec', ns, process.execPath, ...profile, ...execArgv],
    stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
  });
  registerChild(child);
  return child;
}

export function benchScript(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}
