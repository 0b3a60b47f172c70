/** The demo's plain-text report. */
import type { ConnectionResult } from './client.js';
import type { MigrationReport } from '../migrate/migrate.js';

export interface DemoReport {
  connections: number;
  /** Where the service address lives: the bridge underlay, or a VXLAN overlay. */
  topology: 'bridge' | 'vxlan';
  migration: {
    moved: number;
    stayed: string[];
    timings: Record<string, number>;
    imageBytes: number;
    payloadBytes: number;
    error?: string;
    addressMoveMs?: number;
  };
  results: ConnectionResult[];
  /** RSTs (TcpOutRsts) sent per namespace from before the move until every byte was checked. */
  resets: Record<string, number>;
  /** RSTs sent per namespace while the clients closed, after the checks. */
  resetsAtClose?: Record<string, number>;
}

/**
 * What a service process reports of migrate() over IPC (plain JSON: no sockets, errors as text).
 * Used by the demo's service and by the host-to-host bench's.
 */
export function migrationSummary(report: MigrationReport): DemoReport['migration'] {
  return {
    moved: report.moved.length,
    stayed: report.stayed.map((s) => `${s.code}: ${s.reason}`),
    timings: { ...report.timings },
    imageBytes: report.moved.reduce((n, m) => n + m.imageBytes, 0),
    payloadBytes: report.moved.reduce((n, m) => n + m.payloadBytes, 0),
    ...(report.error ? { error: report.error.message } : {}),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const ms = (n: number | undefined) => `${(n ?? 0).toFixed(1)} ms`;

export function formatReport(r: DemoReport): string {
  const t = r.migration.timings;
  const stalls = r.results.map((x) => x.stall).sort((a, b) => a - b);
  const ok = r.results.filter((x) => x.ok).length;
  const bytes = r.results.filter((x) => x.ok).reduce((n, x) => n + x.bytes, 0);
  const streams = r.results.filter((x) => x.kind === 'stream').length;
  const resets = Object.entries(r.resets).map(([host, n]) => `${host} ${n}`).join(', ');
  const perConnection = r.migration.moved > 0 ? (r.migration.imageBytes - r.migration.payloadBytes) / r.migration.moved : 0;
  const lines = [
    'tcp-repair demo: live connections moved from host-a to host-b',
    '',
    `topology               ${r.topology === 'vxlan' ? 'VXLAN overlay (VNI 42) across the hosts' : 'one bridge, service address on the hosts\' links'}`,
    `connections moved      ${r.migration.moved} of ${r.connections} (${streams} sha256 streams, ${r.connections - streams} request/response)`,
    ...(r.migration.stayed.length > 0 ? [`stayed on host-a       ${r.migration.stayed.length}: ${r.migration.stayed.slice(0, 3).join('; ')}`] : []),
    ...(r.migration.error ? [`migration error        ${r.migration.error}`] : []),
    '',
    'phase                  time',
    `  control channel      ${ms(t.connect)}  (TLS-PSK handshake)`,
    `  checkpoint           ${ms(t.checkpoint)}  (freeze + read, all sockets)`,
    `  transfer + restore   ${ms(t.transfer)}  (receiver restore time ${ms(t.restore)})`,
    `  address move         ${ms(t.handover)}  (ip addr del/add + announcement: ${ms(r.migration.addressMoveMs)})`,
    `  activate             ${ms(t.activate)}  (window probes, held writes released)`,
    `  release on host-a    ${ms(t.release)}`,
    `  frozen, first→last   ${ms(t.frozen)}`,
    `  total                ${ms(t.total)}`,
    '',
    `client-seen stall      p50 ${ms(percentile(stalls, 50))}, p99 ${ms(percentile(stalls, 99))}, max ${ms(stalls.at(-1))}`,
    `image size             ${r.migration.imageBytes} bytes (${perConnection.toFixed(0)} per connection beyond queued payload)`,
    `bytes verified         ${bytes} bytes in ${ok} of ${r.results.length} connections (sha256 / per-answer checks)`,
    `resets sent            ${resets}`,
    ...(r.resetsAtClose ? [`resets at close         ${Object.entries(r.resetsAtClose).map(([host, n]) => `${host} ${n}`).join(', ')}`] : []),
    `result                 ${ok === r.results.length && Object.values(r.resets).every((n) => n === 0) ? 'PASS: every byte intact, no reset' : 'FAIL'}`,
  ];
  for (const bad of r.results.filter((x) => !x.ok).slice(0, 5)) lines.push(`  failed ${bad.kind}: ${bad.error}`);
  return lines.join('\n');
}
