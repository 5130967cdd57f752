/**
 * The public types whose values come from native code: the names of native
 * lists (close reasons, load modes and phases, the stats counters) and the
 * shapes the addon hands back unchanged. A leaf module, so native.ts can
 * describe the addon without importing the facade. Which values exist is
 * native code's to say (native/core/wire.h); test/05.wire.test.ts checks
 * that these names are exactly the addon's.
 */

export type Driver = 'inline' | 'threaded';

/** Why a session closed (native CloseReason, by name). */
export type CloseReason = 'remote' | 'reset' | 'local' | 'timeout' | 'shutdown' | 'overflow' | 'error';

/** A command the I/O thread refused (native StaleCommand, by name). */
export type StaleCommand = 'send' | 'close' | 'pause' | 'resume' | 'setTimeout' | 'setNoDelay' | 'setKeepAlive';

/** The counters of one server or client (native ACCEPTPOOL_STATS_FIELDS). */
export interface StatsCounters {
  poolSize: number;
  poolFree: number;
  inUse: number;
  /** Slots retired because their generations ran out; never reused. */
  retiredSlots: number;
  peakInUse: number;
  growths: number;
  shrinks: number;
  accepts: number;
  connects: number;
  connectErrors: number;
  acceptErrors: number;
  /**
   * Accept errors of one connection that its peer had already reset or
   * abandoned before the server could take it: the client saw it connected,
   * the server never had a session for it. Counted in acceptErrors too.
   */
  acceptAborts: number;
  emfile: number;
  shed: number;
  acceptPauses: number;
  staleCommands: number;
  overflows: number;
  timeouts: number;
  bytesIn: number;
  bytesOut: number;
  sendBlocks: number;
  /** Graceful closes that waited for the peer's FIN after sending ours (closeLinger). */
  lingers: number;
  /** ... of them, ended by the peer's FIN. */
  lingerEnds: number;
  /** ... of them, reset at the closeLinger deadline. */
  lingerTimeouts: number;
  /** Bytes read after a close was requested and dropped (never reach JS). */
  bytesDiscarded: number;
  /** 'timeout' events of session.setTimeout() (which close nothing). */
  sessionTimeouts: number;
}

/** The counters of one I/O thread's engine. */
export interface ThreadStats extends StatsCounters {
  /** The backend's own counters (IOCP: accept pool, socket reuse), when it has any. */
  backendCounters?: Record<string, number>;
}

/**
 * Counters of the pool, the accept/connect path and traffic: the sum over
 * the I/O threads (peakInUse: the sum of each thread's peak), and each
 * thread's own in `perThread`.
 */
export interface EndpointStats extends ThreadStats {
  backend: string;
  driver: Driver;
  /**
   * One entry per I/O thread, in thread order (session.thread indexes it);
   * one for the inline driver. Their staleCommands leave out the commands
   * refused before they reached a thread, which only the total counts.
   */
  perThread: ThreadStats[];
}

export type LoadMode = 'connect-close' | 'reqrep' | 'echo' | 'idle';

export type LoadPhase = 'ramp' | 'warmup' | 'measure' | 'hold' | 'draining' | 'done';

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
