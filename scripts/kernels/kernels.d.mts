// Types for kernels.mjs (which kernels the matrix boots, fetched and prepared on demand).
export interface KernelDescriptor {
  format: 1;
  /** Matrix name: '6.1' or '6.12'. */
  name: string;
  /** The Debian package it came from. */
  package: string;
  /** uname -r of the guest. */
  release: string;
  vmlinuz: string;
  modulesDir: string;
  initramfs: string;
}
export declare const ROOT: string;
export declare const CACHE: string;
export declare const KERNELS: { name: string; pattern: RegExp }[];
export declare function newestPackage(spec: { name: string; pattern: RegExp }): { package: string; release: string } | null;
export declare function ensureKernel(name: string): KernelDescriptor;
export declare function readKernel(name: string): KernelDescriptor;
