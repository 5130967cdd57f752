/**
 * The native load generator: connection storms, request/reply, echo and idle
 * connections run by native threads on acceptpool's own engine, with no
 * JavaScript per connection, so it can drive a server harder than a
 * `node:net` client can. What `acceptpool bench` measures servers with.
 *
 * ```ts
 * const result = await runLoad({ mode: 'reqrep', port: 7777, connections: 64, duration: 3000 });
 * console.log(result.rate, result.latencyUs.p99, result.errors);
 * ```
 */
import { InvalidStateError } from './errors';
import { binding } from './native';
import type { NativeLoadGenerator, NativeLoadResult } from './native';
import { resolveLoadOptions } from './options';
import type { LoadOptions } from './options';
import type { LoadProgress, LoadResult } from './types';

export type { LoadOptions };
export type { LatencySummary, LoadMode, LoadPhase, LoadProgress, LoadResult } from './types';

/** One native load generator; runs one load at a time. */
export class LoadGenerator {
  private readonly native: NativeLoadGenerator = new binding.NativeLoadGenerator();
  private active = false;

  /** Whether a run is in progress. */
  get running(): boolean {
    return this.active;
  }

  /** Runs a load to its end (or until stop()) and resolves with what it measured. */
  async run(options: LoadOptions): Promise<LoadResult> {
    const { mode, native } = resolveLoadOptions(options);
    if (this.active) throw new InvalidStateError('a load generator run is already in progress');
    const cpu0 = process.cpuUsage();
    const started = this.native.start(native);
    this.active = true;
    let result: NativeLoadResult;
    try {
      result = await started;
    } finally {
      this.active = false;
    }
    const cpu = process.cpuUsage(cpu0);
    return { mode, ...result, cpuUs: cpu.user + cpu.system };
  }

  /** Counters while a run goes on (cheap: a few atomic reads). */
  progress(): LoadProgress {
    return this.native.progress();
  }

  /** Ends the run early: connections are reset and run() resolves with what was measured. */
  stop(): void {
    this.native.stop();
  }
}

/** Runs one load on a fresh generator. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new LoadGenerator().run(options);
}
