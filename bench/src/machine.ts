/** What the figures were measured on: recorded with every result file. */
import os from 'node:os';
import { readFileSync } from 'node:fs';

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  /** Load average (1 min) when the bench started: other work on the machine skews figures. */
  loadAverage: number;
  virtualization: string | null;
}

function virtualization(): string | null {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    return /^flags\s*:.*\bhypervisor\b/m.test(flags) ? 'virtual machine' : 'bare metal';
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    virtualization: virtualization(),
  };
}
