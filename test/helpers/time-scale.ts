/**
 * How much slower than the host this run's machine is, for deadlines that guard against hangs:
 * 1 normally; the kernel matrix sets TCP_REPAIR_TIME_SCALE in its qemu (TCG) guests, where every
 * instruction is emulated (docs/kernels.md). Scale deadlines with it, never the assertions about
 * what the kernel did.
 */
export const timeScale = Math.max(1, Number(process.env.TCP_REPAIR_TIME_SCALE) || 1);

/** A deadline in ms, scaled for slow (emulated) machines. */
export const scaled = (ms: number): number => Math.round(ms * timeScale);
