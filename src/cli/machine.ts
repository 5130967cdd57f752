/**
 * The machine a benchmark runs on, and how busy others keep it: the noise
 * check. From /proc/stat the CPU time every process on the machine used
 * during a run; minus the CPU time of the run's own processes (the bench
 * with its load generator threads, the server measured), what is left is
 * other programs competing for the same cores. A run where they took more
 * than NOISY_PCT of one core is noisy: it is flagged, and measured again
 * when asked (`--retry-noisy`); `--wait-quiet` waits for a quiet machine
 * before each run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Other processes above this share of one core make a run noisy. */
export const NOISY_PCT = 25;
/** How long one look at the machine lasts while waiting for quiet. */
const QUIET_SAMPLE_MS = 500;

export interface Machine {
  cpus: number;
  /** "model name" from /proc/cpuinfo (os.cpus() elsewhere). */
  cpuModel: string;
  kernel: string;
  platform: string;
  node: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  loadAverage: number[];
}

function cpuModel(): string {
  try {
    const line = fs
      .readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^model name\s*:/.test(l));
    if (line !== undefined) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export function describeMachine(): Machine {
  return {
    cpus: os.cpus().length,
    cpuModel: cpuModel(),
    kernel: `${os.type()} ${os.release()}`,
    platform: `${os.platform()} ${os.arch()}`,
    node: process.version,
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

/** All CPUs' time as /proc/stat counts it: busy and total, in the same (kernel) ticks. */
export interface CpuTicks {
  busy: number;
  total: number;
  at: number;
}

export function readTicks(): CpuTicks | null {
  let first: string;
  try {
    first = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  } catch {
    return null;
  }
  // cpu  user nice system idle iowait irq softirq steal ...
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || f.some((v) => !Number.isFinite(v))) return null;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  // Time stolen by the hypervisor is lost to the run as much as time taken by a neighbour.
  const busy = total - f[3] - f[4];
  return { busy, total, at: Date.now() };
}

/**
 * Percent of one core that processes other than `ownCpuUs` (the run's own,
 * in µs) used between two readings; NaN where /proc/stat is unknown.
 * Ratios of ticks, so the kernel's tick rate does not matter.
 */
export function foreignCpuPct(before: CpuTicks | null, after: CpuTicks | null, ownCpuUs: number, cpus = os.cpus().length): number {
  if (before === null || after === null || after.total <= before.total) return NaN;
  const wallUs = (after.at - before.at) * 1000;
  if (wallUs <= 0) return NaN;
  const busyUs = ((after.busy - before.busy) / (after.total - before.total)) * cpus * wallUs;
  return Math.max(0, ((busyUs - ownCpuUs) / wallUs) * 100);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits, up to maxMs, until the whole machine is nearly idle (the bench's
 * own processes are idle between runs, so what is busy is someone else).
 * Resolves with whether it got quiet; `stop` ends the wait early.
 */
export async function waitForQuiet(maxMs: number, stop: () => boolean): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline && !stop()) {
    const t0 = readTicks();
    const self0 = process.cpuUsage();
    await sleep(QUIET_SAMPLE_MS);
    const self = process.cpuUsage(self0);
    const pct = foreignCpuPct(t0, readTicks(), self.user + self.system);
    if (!(pct > NOISY_PCT)) return true;
  }
  return false;
}
