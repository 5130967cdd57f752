/**
 * The public types whose values come from native code: the names of native
 * lists (close reasons, load modes and phases, the stats counters) and the
 * shapes the addon hands back unchanged. A leaf module, so native.ts can
 * describe the addon without importing the facade. Which values exist is
 * native code's to say (native/core/wire.h); test/05.wire.test.ts checks
 * that these names are exactly the addon's.
 */

/**
 * How native I/O meets Node's event loop (README, "Drivers"): 'inline' polls
 * the backend on Node's own loop, 'threaded' runs each engine on an I/O
 * thread of its own and hands JS batches of events.
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
  /** Slots that can hold a session (retired ones excluded). */
  poolSize: number;
  /** Slots free now. */
  poolFree: number;
  /** Sessions open or closing. */
  inUse: number;
  /** Slots retired because their generations ran out; never reused. */
  retiredSlots: number;
  /** The most sessions in use at once. */
  peakInUse: number;
  /** Times the pool grew by a chunk of slots. */
  growths: number;
  /** Times the pool gave an idle chunk of slots back. */
  shrinks: number;
  /** Connections accepted. */
  accepts: number;
  /** Outgoing connects started (a client's). */
  connects: number;
  /** Outgoing connects that failed. */
  connectErrors: number;
  /** accept() calls that failed (EMFILE and aborted connections included). */
  acceptErrors: number;
  /**
   * Accept errors of one connection that its peer had already reset or
   * abandoned before the server could take it: the client saw it connected,
   * the server never had a session for it. Counted in acceptErrors too.
   */
  acceptAborts: number;
  /** EMFILE or ENFILE seen by accept (out of descriptors). */
  emfile: number;
  /** Connections accepted and closed at once to get past EMFILE. */
  shed: number;
  /** Times accepting paused because maxConnections sessions were open. */
  acceptPauses: number;
  /** Commands refused because their session id was no longer live. */
  staleCommands: number;
  /** Sessions closed with 'overflow': their send queue passed maxQueuedBytes. */
  overflows: number;
  /** Sessions closed with reason 'timeout' (idleTimeout, or a client's connect timeout). */
  timeouts: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes sent. */
  bytesOut: number;
  /** Send-queue blocks allocated. */
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
/** The transport a PROXY header names ('stream': TCP; 'unspec': none). */
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
  /** The TLV's type byte. */
  type: number;
  /** Its value, as the header carried it. */
  value: Buffer;
}

/** What a session's PROXY header said (server option proxyProtocol). */
export interface ProxyInfo {
  /** The header's version: 1 (text) or 2 (binary). */
  version: 1 | 2;
  /** What the header says the connection is. */
  command: ProxyCommand;
  /** The family of its addresses. */
  family: ProxyFamily;
  /** The client's transport. */
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
  /** The backend's own counters (IOCP: accept pool, socket reuse; libuv: queuedWrites, staleCallbacks), when it has any. */
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
  /** The driver that runs. */
  driver: Driver;
  /**
   * One entry per I/O thread, in thread order (session.thread indexes it);
   * one for the inline driver. Their staleCommands leave out the commands
   * refused before they reached a thread, which only the total counts.
   */
  perThread: ThreadStats[];
}

/** What the load generator does on each connection (LoadOptions.mode says each). */
export type LoadMode = 'connect-close' | 'reqrep' | 'echo' | 'idle' | 'http' | 'http-close';

/**
 * Where a load generator run is: 'ramp' (opening connections), 'warmup'
 * (load not yet measured), 'measure', 'hold' ('idle': connections held),
 * 'draining' (closing what is open), 'done'.
 */
export type LoadPhase = 'ramp' | 'warmup' | 'measure' | 'hold' | 'draining' | 'done';

/** Latencies in microseconds: connect (connect-close), connect to reply (reqrep, http-close), round trip (echo, http). */
export interface LatencySummary {
  /** Samples taken (the measured window only). */
  count: number;
  /** The mean. */
  mean: number;
  /** The median. */
  p50: number;
  /** The 90th percentile. */
  p90: number;
  /** The 99th percentile. */
  p99: number;
  /** The 99.9th percentile. */
  p999: number;
  /** The largest sample. */
  max: number;
}

/** What a load generator run measured (runLoad(), LoadGenerator.run()). */
export interface LoadResult {
  /** The mode that ran. */
  mode: LoadMode;
  /** Native threads that generated the load. */
  threads: number;
  /** Connections in flight or held, over all threads, as asked. */
  connections: number;
  /** Operations per second in the measured window (connections/s, messages/s for echo, requests/s for http). */
  rate: number;
  /** Operations completed in the measured window. */
  completed: number;
  /** Operations completed in any phase (warm-up included). */
  total: number;
  /** Connects started; every one ends as connected, abandoned or an error. */
  connects: number;
  /** Connects that succeeded. */
  connected: number;
  /** Connects still in progress when the run ended (given up, not errors). */
  abandoned: number;
  /** The most connections open at once. */
  peakOpen: number;
  /** The measured window's length, ms. */
  windowMs: number;
  /** Echo, http and idle: how long opening every connection took. */
  rampMs: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes sent. */
  bytesOut: number;
  /** Errors by name: OS codes (`ECONNREFUSED`, ...), `mismatch` (reply differs, or an http response that is not 200 framed by Content-Length), `eof` (server closed), `timeout`. */
  errors: Record<string, number>;
  /** The sum of `errors`. */
  errorCount: number;
  /** Latency percentiles of the measured window, µs. */
  latencyUs: LatencySummary;
  /** CPU time this process used during the run (the generator's threads and little else), µs. */
  cpuUs: number;
}

/** A running load generator's counts so far (LoadGenerator.progress()). */
export interface LoadProgress {
  /** Operations completed so far (warm-up included). */
  total: number;
  /** Operations completed in the measured window so far. */
  completed: number;
  /** Errors so far, every kind. */
  errors: number;
  /** Connections open now. */
  open: number;
  /** Where the run is. */
  phase: LoadPhase;
  /** False once the run has finished. */
  running: boolean;
}
