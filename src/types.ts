/**
 * The public types whose values come from native code: the names of native
 * lists (close reasons, load modes and phases, the stats counters) and the
 * shapes the addon hands back unchanged. A leaf module, so native.ts can
 * describe the addon without importing the facade. Which values exist is
 * native code's to say (native/core/wire.h); test/05.wire.test.ts checks
 * that these names are exactly the addon's.
 */

export type Driver = 'inline' | 'threaded';

/**
 * The OS I/O backend an endpoint's engines run (README, "Backends"):
 * 'epoll' (Linux), 'iocp' (Windows), 'io_uring' (Linux, where the kernel
 * allows it), 'libuv' (the portable one, on every OS).
 */
export type BackendName = 'epoll' | 'io_uring' | 'iocp' | 'libuv';

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
  /** proxyProtocol: sessions whose client a PROXY header named. */
  proxyHeaders: number;
  /** ... sessions from a LOCAL (health check) or UNKNOWN header: the balancer itself. */
  proxyLocal: number;
  /** Connections refused: their peer is not in proxyProtocol.trusted. */
  proxyUntrusted: number;
  /** ... their header broke the PROXY protocol spec. */
  proxyMalformed: number;
  /** ... their header was not complete within proxyProtocol.timeout. */
  proxyTimeouts: number;
  /** ... their peer closed or reset before its header was complete. */
  proxyAborted: number;
  /** ... too many headers split across segments were held at once. */
  proxyBusy: number;
  /** close({ drain }) calls that began a drain. */
  drains: number;
  /** Sessions still open at a drain's deadline, closed with 'shutdown'. */
  drainCloses: number;
}

/** A PROXY header's command: 'local' is the balancer's own connection (a health check). */
export type ProxyCommand = 'local' | 'proxy';
/** The address family a PROXY header names ('unspec': none; the connection's own endpoints stand). */
export type ProxyFamily = 'unspec' | 'IPv4' | 'IPv6' | 'unix';
export type ProxyTransport = 'unspec' | 'stream' | 'dgram';
/** Why a connection that had to start with a PROXY header never became a session. */
export type ProxyRejectReason = 'untrusted' | 'malformed' | 'timeout' | 'aborted' | 'busy';

/** One endpoint a PROXY header names. */
export interface ProxyEndpoint {
  /** IPv4/IPv6: the address; unix: the socket path. */
  address: string;
  /** IPv4/IPv6 only (0 for unix). */
  port: number;
}

/** A v2 header's type-length-value field (e.g. 0x01 ALPN, 0x02 authority, 0xEA AWS VPC endpoint). */
export interface ProxyTlv {
  type: number;
  value: Buffer;
}

/** What a session's PROXY header said (server option proxyProtocol). */
export interface ProxyInfo {
  version: 1 | 2;
  command: ProxyCommand;
  family: ProxyFamily;
  transport: ProxyTransport;
  /** The client (null for 'local' and 'unspec'): the session's remoteAddress/remotePort for IPv4/IPv6. */
  source: ProxyEndpoint | null;
  /** The address the client reached on the balancer (null for 'local' and 'unspec'). */
  destination: ProxyEndpoint | null;
  /** v2 TLVs in header order (checked to be well formed; a CRC32C one is verified). */
  tlvs: ProxyTlv[];
}

/** The counters of one I/O thread's engine. */
export interface ThreadStats extends StatsCounters {
  /** The backend's own counters (IOCP: accept pool, socket reuse), when it has any. */
  backendCounters?: Record<string, number>;
}

/**
 * Counters of the pool, the accept/connect path and traffic: the sum over
 * the I/O threads, and each thread's own in `perThread`. peakInUse is the
 * most sessions the threads were seen holding together at the ends of their
 * poll rounds (README, "I/O threads").
 */
export interface EndpointStats extends ThreadStats {
  /** The backend that runs. */
  backend: BackendName;
  /**
   * With options.backend 'auto': why it passed over the backends it prefers
   * ("io_uring: io_uring_setup: EPERM"); absent when it took its first choice.
   */
  backendFallback?: string;
  driver: Driver;
  /**
   * One entry per I/O thread, in thread order (session.thread indexes it);
   * one for the inline driver. Their staleCommands leave out the commands
   * refused before they reached a thread, which only the total counts.
   */
  perThread: ThreadStats[];
}

export type LoadMode = 'connect-close' | 'reqrep' | 'echo' | 'idle' | 'http' | 'http-close';

export type LoadPhase = 'ramp' | 'warmup' | 'measure' | 'hold' | 'draining' | 'done';

/** Latencies in microseconds: connect (connect-close), connect to reply (reqrep, http-close), round trip (echo, http). */
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
  /** Operations per second in the measured window (connections/s, messages/s for echo, requests/s for http). */
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
  /** Echo, http and idle: how long opening every connection took. */
  rampMs: number;
  bytesIn: number;
  bytesOut: number;
  /** Errors by name: OS codes (`ECONNREFUSED`, ...), `mismatch` (reply differs, or an http response that is not 200 framed by Content-Length), `eof` (server closed), `timeout`. */
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
