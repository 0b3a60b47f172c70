/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
