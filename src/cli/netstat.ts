/**
 * Kernel TCP counters from /proc/net/netstat (Linux): ListenOverflows counts
 * connections dropped because a listener's accept queue was full, the sign
 * of a server that does not accept fast enough. The counters are per network
 * namespace, so other programs' listeners count too; runs are short and
 * compared side by side.
 */
import * as fs from 'node:fs';

export interface ListenCounters {
  overflows: number;
  drops: number;
}

/** Current TcpExt ListenOverflows / ListenDrops, or null where /proc has none. */
export function readListenCounters(file = '/proc/net/netstat'): ListenCounters | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  // Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = lines[i].trim().split(/\s+/);
    const values = lines[i + 1].trim().split(/\s+/);
    if (names[0] !== 'TcpExt:' || values[0] !== 'TcpExt:') continue;
    const at = (name: string): number => {
      const k = names.indexOf(name);
      return k > 0 ? Number(values[k]) : NaN;
    };
    const overflows = at('ListenOverflows');
    const drops = at('ListenDrops');
    if (!Number.isFinite(overflows)) return null;
    return { overflows, drops: Number.isFinite(drops) ? drops : overflows };
  }
  return null;
}

/** Counter growth between two readings (NaN when either is missing). */
export function overflowDelta(before: ListenCounters | null, after: ListenCounters | null): number {
  if (before === null || after === null) return NaN;
  return after.overflows - before.overflows;
}
