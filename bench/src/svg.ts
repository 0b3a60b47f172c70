/**
 * A small SVG line-chart generator for the bench plot (no dependencies, no web fonts: the
 * viewer's own sans-serif). X is the connection count on a log scale; each panel is one chart.
 */
import type { LocalResult } from './local-suite.js';
import type { HostResult } from './host-suite.js';

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
}

export interface Chart {
  title: string;
  yLabel: string;
  series: Series[];
  /** Logarithmic y axis (for quantities spanning decades). */
  yLog?: boolean;
  /** A horizontal reference line, e.g. a target. */
  guide?: { value: number; label: string };
}

const PANEL = { width: 460, height: 320, left: 64, right: 16, top: 36, bottom: 92 };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Round tick steps (1, 2, 5 × 10^k) giving about `count` ticks from 0 to max. */
function linearTicks(max: number, count = 5): number[] {
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.at(-1)! < max) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks;
}

function label(value: number): string {
  if (value >= 1000) return `${value / 1000}k`.replace('.0k', 'k');
  return String(Number(value.toPrecision(3)));
}

function panel(chart: Chart, originX: number): string {
  const { width, height, left, right, top, bottom } = PANEL;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const all = chart.series.flatMap((s) => s.points);
  const xsSorted = [...new Set(all.map(([x]) => x))].sort((a, b) => a - b);
  const xMin = xsSorted[0] ?? 1;
  const xMax = xsSorted.at(-1) ?? 10;
  const xSpan = Math.log10(xMax) - Math.log10(xMin) || 1;
  const x = (v: number) => originX + left + ((Math.log10(v) - Math.log10(xMin)) / xSpan) * plotW;
  const ys = all.map(([, y]) => y).concat(chart.guide ? [chart.guide.value] : []);
  let yTicks: number[];
  let y: (v: number) => number;
  if (chart.yLog) {
    yTicks = logTicks(Math.max(1e-3, Math.min(...ys)), Math.max(...ys));
    const lo = Math.log10(yTicks[0]!);
    const hi = Math.log10(yTicks.at(-1)!);
    y = (v) => top + plotH - ((Math.log10(Math.max(v, yTicks[0]!)) - lo) / (hi - lo || 1)) * plotH;
  } else {
    yTicks = linearTicks(Math.max(...ys, 1e-9));
    const hi = yTicks.at(-1)!;
    y = (v) => top + plotH - (v / hi) * plotH;
  }
  const out: string[] = [];
  out.push(`<text x="${originX + width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escape(chart.title)}</text>`);
  for (const t of yTicks) {
    out.push(`<line x1="${originX + left}" x2="${originX + left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${originX + left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of xsSorted) {
    out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top}" y2="${top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  out.push(`<rect x="${originX + left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${originX + left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">connections (N, log scale)</text>`);
  out.push(`<text transform="translate(${originX + 16} ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(chart.yLabel)}</text>`);
  if (chart.guide) {
    const gy = y(chart.guide.value).toFixed(1);
    out.push(`<line x1="${originX + left}" x2="${originX + left + plotW}" y1="${gy}" y2="${gy}" stroke="#c00" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${originX + left + plotW - 4}" y="${Number(gy) - 4}" text-anchor="end" fill="#c00">${escape(chart.guide.label)}</text>`);
  }
  for (const s of chart.series) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const [px, py] of s.points) out.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  chart.series.forEach((s, i) => {
    const lx = originX + left + (i % 2) * (plotW / 2);
    const ly = top + plotH + 54 + Math.floor(i / 2) * 18;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}">${escape(s.name)}</text>`);
  });
  return out.join('\n');
}

export function svgDocument(charts: Chart[], caption: string): string {
  const width = PANEL.width * charts.length;
  const height = PANEL.height + 24;
  const body = charts.map((chart, i) => panel(chart, i * PANEL.width)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    body,
    `<text x="8" y="${height - 8}" fill="#555" font-size="11">${escape(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

const COLORS = { idle: '#1f77b4', queued: '#d62728', host: '#2ca02c' };

export function renderPlot(result: {
  date: string;
  machine: { cpus: number; kernel: string; node: string };
  local: { results: LocalResult[] } | null;
  host?: { results: HostResult[] } | null;
}): string {
  const charts: Chart[] = [];
  if (result.local) {
    const series: Series[] = [];
    for (const workload of ['idle', 'queued'] as const) {
      const rows = result.local.results.filter((r) => r.workload === workload).sort((a, b) => a.connections - b.connections);
      if (rows.length === 0) continue;
      const what = workload === 'idle' ? 'idle' : '4 KiB in + 8 KiB out';
      series.push({ name: `library, ${what}`, color: COLORS[workload], points: rows.map((r) => [r.connections, r.cpu.node.checkpointRestore]) });
      series.push({ name: `C reference, ${what}`, color: COLORS[workload], dashed: true, points: rows.map((r) => [r.connections, r.cpu.c.checkpointRestore]) });
    }
    charts.push({ title: 'checkpoint + restore, per socket', yLabel: 'CPU µs per socket', series });
  }
  if (result.host && result.host.results.length > 0) {
    const rows = [...result.host.results].sort((a, b) => a.connections - b.connections);
    charts.push({
      title: 'host-to-host move: total freeze',
      yLabel: 'ms (log scale)',
      yLog: true,
      guide: { value: 1000, label: 'target at 10k: 1 s' },
      series: [
        { name: 'frozen, first freeze → activated', color: COLORS.host, points: rows.map((r) => [r.connections, r.frozenMs]) },
        { name: 'client stall p99', color: '#9467bd', dashed: true, points: rows.map((r) => [r.connections, r.stallMs.p99]) },
      ],
    });
  }
  const caption = `tcp-repair bench ${result.date.slice(0, 10)}: ${result.machine.cpus} vCPU, Linux ${result.machine.kernel}, Node ${result.machine.node}; medians`;
  return svgDocument(charts, caption);
}
