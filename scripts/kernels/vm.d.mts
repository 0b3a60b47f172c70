// Types for vm.mjs (the boot module of the kernel matrix; see the header of vm.mjs).
import type { KernelDescriptor } from './kernels.mjs';

export declare const QEMU: string;
export declare const VIRTIOFSD: string;

export interface BootOptions {
  kernel: KernelDescriptor;
  /** Shell command run by the host's /bin/sh as root in the guest. */
  command: string;
  /** Working directory in the guest (same path as on the host); default process.cwd(). */
  cwd?: string;
  env?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  /** Whole-boot deadline; qemu is killed when it expires. Default 600000. */
  timeoutMs?: number;
  /** An existing host tap device attached as virtio-net (eth0 in the guest, unconfigured). */
  tap?: { ifname: string; mac?: string };
  /** Also a user-mode (slirp) NIC for outbound access, eth0 = 10.0.2.15/24 via 10.0.2.2 (tap becomes eth1). */
  userNet?: boolean;
  /** qemu -accel value; default 'tcg,thread=multi'. */
  accel?: string;
  qemuArgs?: string[];
  onConsole?: (text: string) => void;
  onOutput?: (text: string) => void;
  signal?: AbortSignal;
}

export interface VmResult {
  /** The command's exit code; null when it never finished (timeout, crash, abort). */
  exitCode: number | null;
  /** The command's stdout and stderr, interleaved. */
  output: string;
  /** Kernel console, plus qemu's stderr and exit status when abnormal. */
  console: string;
  /** qemu start until the command started (ms); null when the guest never got there. */
  bootMs: number | null;
  commandMs: number | null;
  totalMs: number;
  timedOut: boolean;
  /** The guest's /proc/uptime (s) when the command started. */
  guestUptimeAtStart: number | null;
  /** The processes bootVm started, all gone (killed if need be) when it resolves. */
  pids: { qemu: number | null; virtiofsd: number | null };
}

export declare function bootVm(options: BootOptions): Promise<VmResult>;
