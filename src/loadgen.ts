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
import * as net from 'node:net';

import { InvalidArgumentError, InvalidStateError } from './errors';
import { checkInteger, describe } from './options';
import { binding } from './native';
import type { NativeLoadGenerator, NativeLoadOptions, NativeLoadResult } from './native';

export type LoadMode = 'connect-close' | 'reqrep' | 'echo' | 'idle';

const MODES: readonly LoadMode[] = ['connect-close', 'reqrep', 'echo', 'idle'];

export interface LoadOptions {
  /** Server port. */
  port: number;
  /** Server IPv4 address (default 127.0.0.1). */
  host?: string;
  /**
   * 'connect-close' (default): connect, reset at once, connect again.
   * 'reqrep': connect, send `messageSize` bytes, check the echo, reset.
   * 'echo': persistent connections, one message in flight on each.
   * 'idle': open `connections` and hold them until stop() or `duration`.
   */
  mode?: LoadMode;
  /** Connects in flight (storms) or connections held (echo, idle), over all threads (default 64). */
  connections?: number;
  /** Native threads, each with its own engine (default 1). */
  threads?: number;
  /** Measured milliseconds; for 'idle' the longest hold (default 3000). */
  duration?: number;
  /** Milliseconds of load before measuring starts (default 500). */
  warmup?: number;
  /** Bytes per request (default 16). */
  messageSize?: number;
  /**
   * Source addresses: connects bind to firstSource, firstSource + 1, ... in
   * turn (default 8 when host is in 127.0.0.0/8, else 0: the OS chooses).
   */
  sourceAddresses?: number;
  /** First source address (default 127.0.0.1). */
  firstSource?: string;
  /** Milliseconds a connect or a reply may take before it counts as a timeout (default 3000). */
  timeout?: number;
  /** Echo and idle: milliseconds opening every connection may take before the run starts anyway (default 20000). */
  rampTimeout?: number;
  /** Milliseconds before a connection that failed is tried again (default 10). */
  retryDelay?: number;
  /**
   * Connects in progress at once per thread, at most (default 256; 0 = no
   * cap), so opening thousands of connections does not overflow the
   * server's accept queue.
   */
  maxConnecting?: number;
}

/** Latencies in microseconds: connect (connect-close), connect to reply (reqrep), round trip (echo). */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoadResult {
  mode: LoadMode;
  threads: number;
  connections: number;
  /** Operations per second in the measured window (connections/s, or messages/s for echo). */
  rate: number;
  /** Operations completed in the measured window. */
  completed: number;
  /** Operations completed in any phase (warm-up included). */
  total: number;
  /** Connects started; every one ends as connected, abandoned or an error. */
  connects: number;
  connected: number;
  /** Connects still in progress when the run ended (given up, not errors). */
  abandoned: number;
  peakOpen: number;
  windowMs: number;
  /** Echo and idle: how long opening every connection took. */
  rampMs: number;
  bytesIn: number;
  bytesOut: number;
  /** Errors by name: OS codes (`ECONNREFUSED`, ...), `mismatch` (reply differs), `eof` (server closed), `timeout`. */
  errors: Record<string, number>;
  errorCount: number;
  latencyUs: LatencySummary;
  /** CPU time this process used during the run (the generator's threads and little else), µs. */
  cpuUs: number;
}

export type LoadPhase = 'ramp' | 'warmup' | 'measure' | 'hold' | 'draining' | 'done';

export interface LoadProgress {
  /** Operations completed so far (warm-up included). */
  total: number;
  completed: number;
  errors: number;
  /** Connections open now. */
  open: number;
  phase: LoadPhase;
  running: boolean;
}

const KEYS = new Set<string>([
  'port',
  'host',
  'mode',
  'connections',
  'threads',
  'duration',
  'warmup',
  'messageSize',
  'sourceAddresses',
  'firstSource',
  'timeout',
  'rampTimeout',
  'retryDelay',
  'maxConnecting',
]);
const DAY_MS = 86_400_000;

/** An IPv4 address as an unsigned 32-bit number, or throws naming the option. */
function ipv4(name: string, value: unknown): number {
  if (typeof value !== 'string' || !net.isIPv4(value)) {
    throw new InvalidArgumentError(`${name} must be a numeric IPv4 address, got ${describe(value)}`);
  }
  return value.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function optional(o: LoadOptions, key: keyof LoadOptions, min: number, max: number, fallback: number): number {
  const v = o[key];
  return v === undefined ? fallback : checkInteger(`options.${key}`, v, min, max);
}

/** Checks every option and fills in the defaults. */
export function resolveLoadOptions(options: LoadOptions): { mode: LoadMode; native: NativeLoadOptions } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new InvalidArgumentError(`unknown load generator option ${JSON.stringify(key)}`);
  }
  const mode = options.mode ?? 'connect-close';
  if (!MODES.includes(mode)) {
    throw new InvalidArgumentError(`options.mode must be one of ${MODES.join(', ')}, got ${describe(mode)}`);
  }
  const port = checkInteger('options.port', options.port, 1, 65535);
  const remote = ipv4('options.host', options.host ?? '127.0.0.1');
  const loopback = remote >>> 24 === 127;
  const firstSource = ipv4('options.firstSource', options.firstSource ?? '127.0.0.1');
  const sources = optional(options, 'sourceAddresses', 0, 65536, loopback ? 8 : 0);
  if (sources > 0 && firstSource + sources - 1 > 0xffffffff) {
    throw new InvalidArgumentError('options.sourceAddresses runs past 255.255.255.255');
  }
  const threads = optional(options, 'threads', 1, 64, 1);
  const connections = optional(options, 'connections', 1, 1_000_000, 64);
  return {
    mode,
    native: {
      mode: MODES.indexOf(mode) as NativeLoadOptions['mode'],
      remote,
      port,
      firstSource,
      sources,
      connections,
      threads,
      messageSize: optional(options, 'messageSize', 1, 65536, 16),
      durationMs: optional(options, 'duration', 0, DAY_MS, 3000),
      warmupMs: optional(options, 'warmup', 0, DAY_MS, 500),
      rampTimeoutMs: optional(options, 'rampTimeout', 0, DAY_MS, 20000),
      timeoutMs: optional(options, 'timeout', 1, DAY_MS, 3000),
      retryDelayMs: optional(options, 'retryDelay', 0, 60000, 10),
      maxConnecting: optional(options, 'maxConnecting', 0, 1_000_000, 256),
    },
  };
}

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
