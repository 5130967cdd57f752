/**
 * What `acceptpool bench` reports: medians and spreads over rounds, each
 * server's ratio against the baseline (node:net), as a text table, a
 * Markdown table (the README's), JSON and a self-drawn SVG bar chart.
 */
import type { Machine } from './machine';

export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

/** Median, min and max of the finite values (NaN when there are none). */
export function spread(values: readonly number[]): Spread {
  const ok = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, values: [...values] };
  const mid = ok.length >> 1;
  const median = ok.length % 2 === 1 ? ok[mid] : (ok[mid - 1] + ok[mid]) / 2;
  return { median, min: ok[0], max: ok[ok.length - 1], values: [...values] };
}

export interface MetricRow {
  /** Stable key, e.g. "connect-close.rate". */
  id: string;
  label: string;
  /** A detail of the row above it. */
  sub: boolean;
  better: 'higher' | 'lower' | 'none';
  /** By server name. */
  values: Record<string, Spread>;
  /** Each other server's median / the baseline's, by server name; empty without a baseline. */
  ratios: Record<string, number>;
}

export interface ServerInfo {
  name: string;
  label: string;
  /** What it runs on, as the server said ('epoll · threaded', 'libuv', ...). */
  engine: string;
}

export interface ClientCheck {
  /** What the clients ran against. */
  server: string;
  connections: number;
  clients: Array<{ label: string; rate: Spread; cpuUsPerConn: Spread }>;
  /** The fastest native run / node:net client (medians). */
  ratio: number;
}

export interface EmitCheck {
  calls: number;
  variants: Array<{ label: string; nsPerEvent: Spread }>;
}

export interface OverflowCheck {
  connections: number;
  backlog: number;
  /** ListenOverflows during the connect + close runs, summed over rounds, by server; null where unknown. */
  servers: Record<string, number | null>;
}

export interface NoiseSummary {
  /** A run is noisy when other processes took more than this share of one core. */
  thresholdPct: number;
  /** Runs kept for the report (rates, CPU, latency). */
  runs: number;
  /** Kept runs that were noisy all the same. */
  noisy: number;
  /** Runs measured again because they were noisy. */
  retried: number;
  /** Other processes' CPU, % of one core, over the kept runs (NaN where unknown). */
  medianPct: number;
  maxPct: number;
  /** Waits for a quiet machine that ran out first. */
  waitsTimedOut: number;
}

export interface BenchReport {
  tool: 'acceptpool bench';
  version: string;
  /** The command line that produced it. */
  command: string;
  startedAt: string;
  seconds: number;
  machine: Machine;
  options: Record<string, unknown>;
  /** In column order: the baseline first. */
  servers: ServerInfo[];
  baseline: string | null;
  /** Servers asked for that cannot run here, and why. */
  skipped: Array<{ name: string; reason: string }>;
  rows: MetricRow[];
  clientCheck: ClientCheck | null;
  emit: EmitCheck | null;
  overflow: OverflowCheck | null;
  /** Errors the load generator counted, by server and name, over all runs. */
  errors: Record<string, Record<string, number>>;
  noise: NoiseSummary;
  notes: string[];
}

export function makeRow(
  id: string,
  label: string,
  better: MetricRow['better'],
  byServer: ReadonlyArray<[string, number[]]>,
  baseline: string | null,
  sub = false,
): MetricRow {
  const values: Record<string, Spread> = {};
  for (const [name, v] of byServer) values[name] = spread(v);
  const ratios: Record<string, number> = {};
  const base = baseline !== null ? values[baseline]?.median : undefined;
  if (better !== 'none' && base !== undefined) {
    for (const [name] of byServer) {
      if (name === baseline) continue;
      const m = values[name].median;
      // A ratio of a non-positive median (a noisy memory delta) means nothing.
      ratios[name] = m > 0 && base > 0 ? m / base : NaN;
    }
  }
  return { id, label, sub, better, values, ratios };
}

// ---------------------------------------------------------------- text

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The median, and with several rounds ±half the min–max range in percent of it. */
function formatSpread(s: Spread, withRange: boolean): string {
  const m = formatNumber(s.median);
  if (!withRange || s.values.length < 2 || !(s.median > 0)) return m;
  return `${m} ±${Math.round(((s.max - s.min) / 2 / s.median) * 100)}%`;
}

export function formatRatio(r: number | undefined): string {
  return r !== undefined && Number.isFinite(r) ? `${r.toFixed(2)}x` : '–';
}

function formatPct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v)}%` : 'unknown';
}

/** The table's columns: every server, each but the baseline followed by its ratio. */
function columns(report: BenchReport): string[][] {
  const header = [''];
  for (const s of report.servers) {
    header.push(s.label);
    if (report.baseline !== null && s.name !== report.baseline) header.push('ratio');
  }
  const rows = [header];
  for (const r of report.rows) {
    const cells = [`${r.sub ? '  ' : ''}${r.label}`];
    for (const s of report.servers) {
      cells.push(formatSpread(r.values[s.name] ?? spread([]), !r.sub));
      if (report.baseline !== null && s.name !== report.baseline) cells.push(r.better === 'none' ? '' : formatRatio(r.ratios[s.name]));
    }
    rows.push(cells);
  }
  return rows;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

function describeRun(report: BenchReport): string[] {
  const o = report.options;
  const m = report.machine;
  return [
    `acceptpool bench, ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC: ${String(o.rounds)} round(s) x ${String(o.durationMs)} ms ` +
      `(+${String(o.warmupMs)} ms warm-up), loopback, backlog ${String(o.backlog)}`,
    `machine: ${m.cpus} x ${m.cpuModel}, ${m.kernel}, node ${m.node}; load average ${m.loadAverage.join(' ')} at the start`,
    `load: acceptpool's native generator, ${String(o.threads)} thread(s), source addresses 127.0.0.1..${String(o.sources)}; ` +
      `servers in processes of their own: ${report.servers.map((s) => (s.engine !== '' ? `${s.label} (${s.engine})` : s.label)).join(', ')}`,
  ];
}

function describeNoise(n: NoiseSummary): string {
  if (!Number.isFinite(n.maxPct)) return 'noise: unknown here (no /proc/stat)';
  return (
    `noise: other processes used ${formatPct(n.medianPct)} of a core in the median run, ${formatPct(n.maxPct)} at most; ` +
    `${n.noisy} of ${n.runs} runs above ${n.thresholdPct}%` +
    (n.retried > 0 ? `, ${n.retried} run(s) measured again` : '') +
    (n.waitsTimedOut > 0 ? `, ${n.waitsTimedOut} wait(s) for quiet ran out` : '')
  );
}

export function formatReport(report: BenchReport): string {
  const lines = describeRun(report);
  lines.push(
    report.baseline !== null
      ? `medians over rounds (± half the min–max range); ratio = server / ${labelOf(report, report.baseline)}`
      : `medians over rounds (± half the min–max range); no ratios: node:net is not among the servers`,
  );
  lines.push('');
  if (report.rows.length > 0) lines.push(table(columns(report)));
  const c = report.clientCheck;
  if (c !== null) {
    lines.push('');
    lines.push(`load generator check: connect + close against ${c.server}, ${c.connections} in flight`);
    const rows: string[][] = [['', 'conn/s', 'client CPU µs/conn']];
    for (const client of c.clients)
      rows.push([`  ${client.label}`, formatSpread(client.rate, true), formatNumber(client.cpuUsPerConn.median)]);
    lines.push(table(rows));
    lines.push(`  fastest native / node:net client: ${formatRatio(c.ratio)}`);
  }
  const e = report.emit;
  if (e !== null) {
    lines.push('');
    lines.push(`event delivery, in process (${e.calls.toLocaleString('en-US')} events per run):`);
    const rows: string[][] = [['', 'ns/event median', 'min']];
    for (const v of e.variants) rows.push([`  ${v.label}`, formatNumber(v.nsPerEvent.median), formatNumber(v.nsPerEvent.min)]);
    lines.push(table(rows));
  }
  const ov = report.overflow;
  if (ov !== null) {
    lines.push('');
    const show = (v: number | null): string => (v === null ? 'unknown (no /proc/net/netstat)' : v.toLocaleString('en-US'));
    lines.push(
      `listen overflows during connect + close (${ov.connections} in flight, backlog ${ov.backlog}): ` +
        report.servers.map((s) => `${s.label} ${show(ov.servers[s.name] ?? null)}`).join(', '),
    );
  }
  for (const s of report.servers) {
    const errors = Object.entries(report.errors[s.name] ?? {});
    if (errors.length > 0) lines.push(`load generator errors against ${s.label}: ${errors.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  lines.push(describeNoise(report.noise));
  for (const s of report.skipped) lines.push(`skipped ${s.name}: ${s.reason}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push(`(${report.seconds.toFixed(1)} s)`);
  return lines.join('\n') + '\n';
}

function labelOf(report: BenchReport, name: string): string {
  return report.servers.find((s) => s.name === name)?.label ?? name;
}

// ---------------------------------------------------------------- Markdown

/** The table as Markdown, with the command, date, machine and noise above it (what the README shows). */
export function formatMarkdown(report: BenchReport): string {
  const lines = [`\`${report.command}\``, ''];
  lines.push(...describeRun(report).map((l) => `${l}  `));
  lines.push(`${describeNoise(report.noise)}`);
  lines.push('');
  const [header, ...rows] = columns(report);
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  lines.push(`| ${header.map(cell).join(' | ')} |`);
  lines.push(
    `| --- |${header
      .slice(1)
      .map(() => ' ---: |')
      .join('')}`,
  );
  for (const r of rows) {
    const label = r[0].startsWith('  ') ? `&nbsp; ${r[0].trim()}` : r[0];
    lines.push(`| ${[label, ...r.slice(1)].map(cell).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- SVG

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const COLORS = ['#1565c0', '#6a1b9a', '#ef6c00', '#00838f', '#5d4037'];

/**
 * A horizontal bar per compared metric and server: how many times better
 * than the baseline it does (rates: ratio; costs such as CPU or memory:
 * inverse), on a log axis, growing right (better) or left (worse) from 1x.
 */
export function renderSvg(report: BenchReport): string {
  const others = report.servers.filter((s) => s.name !== report.baseline);
  const bars: Array<{ label: string; server: number; advantage: number }> = [];
  for (const r of report.rows) {
    if (r.better === 'none') continue;
    others.forEach((s, i) => {
      const ratio = r.ratios[s.name];
      if (ratio !== undefined && Number.isFinite(ratio) && ratio > 0) {
        bars.push({ label: r.label.trim(), server: i, advantage: r.better === 'higher' ? ratio : 1 / ratio });
      }
    });
  }
  const c = report.clientCheck;
  if (c !== null && Number.isFinite(c.ratio) && c.ratio > 0) {
    bars.push({ label: 'load generator: native vs node:net client, conn/s', server: -1, advantage: c.ratio });
  }
  const labelWidth = 330;
  const plotWidth = 420;
  const rowHeight = 22;
  const top = 48 + 18 * others.length;
  const width = labelWidth + plotWidth + 70;
  const height = top + bars.length * rowHeight + 40;
  const logs = bars.map((b) => Math.log2(b.advantage));
  const lo = Math.min(-1, Math.floor(Math.min(...logs, 0)));
  const hi = Math.max(1, Math.ceil(Math.max(...logs, 0)));
  const x = (log: number): number => labelWidth + ((Math.min(hi, Math.max(lo, log)) - lo) / (hi - lo)) * plotWidth;
  const bottom = top + bars.length * rowHeight;
  const baseLabel = report.baseline !== null ? labelOf(report, report.baseline) : 'no baseline';
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(`times better than ${baseLabel} (1x = the same)`)}</text>`);
  parts.push(
    `<text x="10" y="36" fill="#555">${escapeXml(`${String(report.options.rounds)} round(s), medians; rates: server / ${baseLabel}; CPU, latency and memory: ${baseLabel} / server`)}</text>`,
  );
  others.forEach((s, i) => {
    const y = 52 + 18 * i;
    parts.push(`<rect x="10" y="${y - 10}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="28" y="${y}">${escapeXml(s.label)}</text>`);
  });
  for (let t = lo; t <= hi; t++) {
    const tx = x(t).toFixed(1);
    const tick = t >= 0 ? `${2 ** t}x` : `1/${2 ** -t}x`;
    parts.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${bottom}" stroke="${t === 0 ? '#333' : '#ddd'}"/>`);
    parts.push(`<text x="${tx}" y="${bottom + 16}" text-anchor="middle" fill="#555">${tick}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowHeight;
    const from = x(0);
    const to = x(Math.log2(b.advantage));
    const left = Math.min(from, to);
    const w = Math.max(1, Math.abs(to - from));
    const color = b.server < 0 ? '#2e7d32' : COLORS[b.server % COLORS.length];
    const first = i === 0 || bars[i - 1].label !== b.label;
    if (first) parts.push(`<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escapeXml(b.label)}</text>`);
    parts.push(`<rect x="${left.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${color}"/>`);
    const textX = b.advantage >= 1 ? left + w + 6 : left - 6;
    parts.push(
      `<text x="${textX.toFixed(1)}" y="${y + 15}"${b.advantage >= 1 ? '' : ' text-anchor="end"'}>${b.advantage.toFixed(2)}x</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
