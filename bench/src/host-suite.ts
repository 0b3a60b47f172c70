/** Host-to-host moves (filled in below). */
export interface HostResult {
  connections: number;
  frozenMs: number;
  stallMs: { p50: number; p99: number; max: number };
}
