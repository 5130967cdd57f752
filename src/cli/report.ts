/**
 * What `acceptpool bench` reports: medians and min–max over rounds, ratios
 * against node:net, as a text table, JSON and a self-drawn SVG bar chart.
 */

export type ServerKey = 'acceptpool' | 'net';

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
  acceptpool: Spread;
  net: Spread;
  /** acceptpool median / node:net median. */
  ratio: number;
}

export interface ClientCheck {
  /** What the clients ran against. */
  server: string;
  connections: number;
  clients: Array<{ label: string; rate: Spread; cpuUsPerConn: Spread }>;
  /** The fastest native run / node:net client (medians). */
  ratio: number;
}

export interface OverflowCheck {
  connections: number;
  backlog: number;
  /** ListenOverflows during the connect + close runs, summed over rounds; null where unknown. */
  acceptpool: number | null;
  net: number | null;
}

export interface BenchReport {
  tool: 'acceptpool bench';
  version: string;
  startedAt: string;
  seconds: number;
  machine: { cpus: number; cpuModel: string; node: string; platform: string; kernel: string };
  options: Record<string, unknown>;
  servers: Record<ServerKey, string>;
  rows: MetricRow[];
  clientCheck: ClientCheck | null;
  overflow: OverflowCheck | null;
  /** Errors the load generator counted, by server and name, over all runs. */
  errors: Record<ServerKey, Record<string, number>>;
  notes: string[];
}

export function makeRow(id: string, label: string, better: MetricRow['better'], ap: number[], net: number[], sub = false): MetricRow {
  const a = spread(ap);
  const n = spread(net);
  // A ratio of a non-positive median (a noisy memory delta) means nothing.
  const ratio = a.median > 0 && n.median > 0 ? a.median / n.median : NaN;
  return { id, label, sub, better, acceptpool: a, net: n, ratio };
}

// ---------------------------------------------------------------- text

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function formatSpread(s: Spread, withRange: boolean): string {
  const m = formatNumber(s.median);
  if (!withRange || !Number.isFinite(s.min) || s.values.length < 2) return m;
  return `${m} (${formatNumber(s.min)}–${formatNumber(s.max)})`;
}

export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '–';
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ').trimEnd()).join('\n');
}

export function formatReport(report: BenchReport): string {
  const o = report.options;
  const lines: string[] = [];
  lines.push(
    `acceptpool bench: ${String(o.rounds)} round(s) x ${String(o.durationMs)} ms (+${String(o.warmupMs)} ms warm-up), loopback, backlog ${String(o.backlog)}`,
  );
  lines.push(
    `load: acceptpool's native generator, ${String(o.threads)} thread(s), source addresses 127.0.0.1..${String(o.sources)}; ` +
      `servers in their own processes: acceptpool (${report.servers.acceptpool}), node:net (${report.servers.net})`,
  );
  lines.push(`medians (min–max over rounds); ratio = acceptpool / node:net`);
  lines.push('');
  const rows: string[][] = [['', 'node:net', 'acceptpool', 'ratio']];
  for (const r of report.rows) {
    const range = !r.sub;
    rows.push([
      `${r.sub ? '  ' : ''}${r.label}`,
      formatSpread(r.net, range),
      formatSpread(r.acceptpool, range),
      r.better === 'none' ? '' : formatRatio(r.ratio),
    ]);
  }
  lines.push(table(rows));
  const c = report.clientCheck;
  if (c !== null) {
    lines.push('');
    lines.push(`load generator check: connect + close against ${c.server}, ${c.connections} in flight`);
    const rows: string[][] = [['', 'conn/s', 'client CPU µs/conn']];
    for (const client of c.clients) rows.push([`  ${client.label}`, formatSpread(client.rate, true), formatNumber(client.cpuUsPerConn.median)]);
    lines.push(table(rows));
    lines.push(`  fastest native / node:net client: ${formatRatio(c.ratio)}`);
  }
  const ov = report.overflow;
  if (ov !== null) {
    lines.push('');
    const show = (v: number | null): string => (v === null ? 'unknown (no /proc/net/netstat)' : v.toLocaleString('en-US'));
    lines.push(
      `listen overflows during connect + close (${ov.connections} in flight, backlog ${ov.backlog}): ` +
        `node:net ${show(ov.net)}, acceptpool ${show(ov.acceptpool)}`,
    );
  }
  for (const key of ['net', 'acceptpool'] as const) {
    const e = Object.entries(report.errors[key]);
    if (e.length > 0) lines.push(`load generator errors against ${key === 'net' ? 'node:net' : 'acceptpool'}: ${e.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push(`(${report.seconds.toFixed(1)} s)`);
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- SVG

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A horizontal bar per compared metric: how many times better acceptpool
 * does than node:net (rates: ratio; costs such as CPU or memory: inverse),
 * on a log axis, growing right (better) or left (worse) from the 1x line.
 */
export function renderSvg(report: BenchReport): string {
  const bars = report.rows
    .filter((r) => r.better !== 'none' && Number.isFinite(r.ratio) && r.ratio > 0)
    .map((r) => ({ label: r.label.trim(), advantage: r.better === 'higher' ? r.ratio : 1 / r.ratio }));
  const c = report.clientCheck;
  if (c !== null && Number.isFinite(c.ratio) && c.ratio > 0) {
    bars.push({ label: 'load generator: native vs node:net client, conn/s', advantage: c.ratio });
  }
  const labelWidth = 330;
  const plotWidth = 420;
  const rowHeight = 26;
  const top = 48;
  const width = labelWidth + plotWidth + 70;
  const height = top + bars.length * rowHeight + 40;
  const logs = bars.map((b) => Math.log2(b.advantage));
  const lo = Math.min(-1, Math.floor(Math.min(...logs, 0)));
  const hi = Math.max(1, Math.ceil(Math.max(...logs, 0)));
  const x = (log: number): number => labelWidth + ((Math.min(hi, Math.max(lo, log)) - lo) / (hi - lo)) * plotWidth;
  const bottom = top + bars.length * rowHeight;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">acceptpool vs node:net: times better (1x = the same)</text>`);
  parts.push(`<text x="10" y="36" fill="#555">${escapeXml(`${String(report.options.rounds)} round(s), medians; rates: acceptpool / node:net; CPU and memory: node:net / acceptpool`)}</text>`);
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
    const color = b.advantage >= 1 ? '#2e7d32' : '#c62828';
    parts.push(`<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end">${escapeXml(b.label)}</text>`);
    parts.push(`<rect x="${left.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${color}"/>`);
    const textX = b.advantage >= 1 ? left + w + 6 : left - 6;
    parts.push(`<text x="${textX.toFixed(1)}" y="${y + 16}"${b.advantage >= 1 ? '' : ' text-anchor="end"'}>${b.advantage.toFixed(2)}x</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
