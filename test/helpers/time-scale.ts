/**
 * How much slower than the host this run's machine is, for deadlines that guard against hangs:
 * 1 normally; the kernel matrix sets TCP_REPAIR_TIME_SCALE in its qemu (TCG) guests, where every
 * instruction is emulated (docs/kernels.md). Scale deadlines with it, never the assertions about
 * what the kernel did. The library's own hang guards (src/child-ipc.ts) define it; the tests use
 * that one definition.
 */
export { hangGuardScale as timeScale, hangGuardMs as scaled } from '../../dist/esm/child-ipc.js';

/** True in a kernel-matrix guest (scripts/kernels/suite.mjs sets TCP_REPAIR_KERNEL_MATRIX to the kernel's name there, 'host' on the host). */
export function inKernelMatrixGuest(): boolean {
  const where = process.env.TCP_REPAIR_KERNEL_MATRIX;
  return where !== undefined && where !== 'host';
}
