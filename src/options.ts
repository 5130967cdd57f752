/**
 * Every option of the API: its type, default, range and up-front validation,
 * in this one place (server and client options, connect() options, load
 * generator options). Native code takes the resolved values complete and has
 * no defaults of its own; what it can hold at most (MAX_SLOTS,
 * maxLoadMessage) it says itself, through the wire.
 */
import * as net from 'node:net';
import * as os from 'node:os';

import { InvalidArgumentError, UnsupportedError } from './errors';
import type { NativeLoadOptions, NativeServerOptions } from './native';
import type { BackendName, Driver, LoadMode } from './types';
import { binding } from './native';
import { MAX_SLOTS, wire } from './wire';

export type { BackendName, Driver };

/** Options of createServer() (every one optional; README, "Options", has the table). */
export interface ServerOptions {
  /** Most sessions open at once; beyond it accepting pauses (default 1,048,576). */
  maxConnections?: number;
  /** Session slots allocated at listen, before any client (default 1024). */
  poolSize?: number;
  /** Slots added per growth step when free slots run low (default 1024). */
  poolGrowth?: number;
  /** listen() backlog (default 511). */
  backlog?: number;
  /** TCP_NODELAY on accepted sockets (default true). */
  noDelay?: boolean;
  /** Queued bytes above which send() returns false and 'drain' follows (default 64 KiB). */
  highWaterMark?: number;
  /** Queued bytes at which the session is closed with reason 'overflow' (default 4 MiB). */
  maxQueuedBytes?: number;
  /** 'inline' (on Node's loop) or 'threaded' (I/O threads: see `threads`). */
  driver?: Driver;
  /**
   * The OS I/O backend (README, "Backends"): a name runs that one or fails
   * (ERR_ACCEPTPOOL_UNSUPPORTED, saying why); 'auto' takes the first this
   * machine can run, in the order of `backends()` (io_uring, then epoll on
   * Linux). The default is the platform's fastest by the benchmark
   * (`defaultBackend()`: epoll on Linux, iocp on Windows); the environment
   * variable ACCEPTPOOL_BACKEND changes it.
   */
  backend?: BackendName | 'auto';
  /**
   * I/O threads, each with its own engine, pool and listener (README,
   * "Scaling and deployment"): 1 to the number of cores (default 1, driver
   * 'threaded'); 0 or 'inline' is the inline driver. With N threads each
   * takes a 1/N share (rounded up) of maxConnections, poolSize and
   * poolGrowth.
   */
  threads?: number | 'inline';
  /**
   * Servers: bind with SO_REUSEPORT so that other servers (other processes,
   * other worker_threads) may listen on the same port, the kernel spreading
   * new connections over them (default false). Linux only; elsewhere
   * ERR_ACCEPTPOOL_UNSUPPORTED.
   */
  reusePort?: boolean;
  /** Close sessions idle this many milliseconds (reason 'timeout'); 0 = never (default). */
  idleTimeout?: number;
  /** Keep a session open for sending after the peer half-closes (default false). */
  allowHalfOpen?: boolean;
  /** For IPv6 hosts: accept IPv6 only (default false: dual-stack). */
  ipv6Only?: boolean;
  /** Accepts taken per wakeup, for fairness with established sessions (default 128). */
  acceptBatch?: number;
  /** Milliseconds without pool pressure before unused chunks are released (default 30,000). */
  shrinkDelay?: number;
  /**
   * After a graceful close (close(), closeSession(), server.close()) has sent
   * everything and its FIN: milliseconds to keep reading and discarding what
   * the peer still sends, waiting for its FIN, before resetting it (default
   * 5,000; 0 = close at once, which resets a peer that is still sending).
   */
  closeLinger?: number;
  /**
   * PROXY protocol v1/v2 from the balancers in front (never auto-detected):
   * every connection from a `trusted` peer must start with a header, which
   * names the client (session.remoteAddress, session.proxy); connections
   * from any other peer are refused. Off by default.
   */
  proxyProtocol?: ProxyProtocolOptions;
}

/** ServerOptions.proxyProtocol: who may send a PROXY header, and how long it may take. */
export interface ProxyProtocolOptions {
  /** Peers allowed to send a header: CIDR ranges or single addresses ('10.0.0.0/8', '::1'). */
  trusted: readonly string[];
  /** Milliseconds a header may take to arrive before the connection is refused (default 3,000). */
  timeout?: number;
}

/** Client options: the session-side subset of the server's. */
export type ClientOptions = Pick<
  ServerOptions,
  | 'maxConnections'
  | 'poolSize'
  | 'poolGrowth'
  | 'noDelay'
  | 'highWaterMark'
  | 'maxQueuedBytes'
  | 'driver'
  | 'backend'
  | 'threads'
  | 'idleTimeout'
  | 'allowHalfOpen'
  | 'shrinkDelay'
  | 'closeLinger'
>;

/** @internal */
export interface ResolvedOptions {
  native: NativeServerOptions;
  allowHalfOpen: boolean;
  ipv6Only: boolean;
}

/** The Linux default, chosen by measurement (README, "Drivers"); the only driver on Windows. */
export const DEFAULT_DRIVER: Driver = 'threaded';
/** The inline driver needs a pollable descriptor, which IOCP does not have. */
const INLINE_AVAILABLE = process.platform !== 'win32';
/**
 * reusePort needs a kernel that balances one port over several listeners
 * (SO_REUSEPORT): Linux. (Several I/O threads of one server need no such
 * thing: where the backend has none (IOCP) they share one listener.)
 */
const REUSE_PORT_AVAILABLE = process.platform === 'linux';

/**
 * @internal Tests and benchmarks only: how a server's I/O threads share its
 * port, as an option under this key ('reuseport', the default, or 'shared';
 * README "Scaling and deployment" says why).
 */
export const kThreadListeners = Symbol('acceptpool.threadListeners');

/** @internal The most I/O threads: the cores, within what native code runs. */
export function maxThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(cores, wire.maxThreads));
}

// What native code can hold at most (a queue's bytes), which the ranges stay within.
const MAX_BYTES = wire.maxQueuedBytes;
const MAX_MS = 2 ** 31 - 1;

/**
 * @internal
 * Every server and client option's default, in the one place that applies
 * them (the README's option table says the same: test/07 holds it to this).
 * Two give way to other options: poolSize and poolGrowth are at most
 * maxConnections, and maxQueuedBytes stays above highWaterMark.
 */
export const OPTION_DEFAULTS = {
  maxConnections: 2 ** 20,
  poolSize: 1024,
  poolGrowth: 1024,
  backlog: 511,
  noDelay: true,
  highWaterMark: 64 * 1024,
  maxQueuedBytes: 4 * 1024 * 1024,
  driver: DEFAULT_DRIVER,
  backend: binding.defaultBackend,
  idleTimeout: 0,
  allowHalfOpen: false,
  ipv6Only: false,
  acceptBatch: 128,
  shrinkDelay: 30_000,
  closeLinger: 5_000,
  reusePort: false,
} as const satisfies Required<Omit<ServerOptions, 'threads' | 'proxyProtocol'>>;

/**
 * @internal proxyProtocol's defaults: the spec asks for at least 3 s, to
 * cover a TCP retransmit of the header.
 */
export const PROXY_DEFAULTS = { timeout: 3_000 } as const satisfies Required<Omit<ProxyProtocolOptions, 'trusted'>>;

/**
 * @internal
 * The range of every numeric option, in the one place that checks them.
 * Each value in range, with any other option in range, stays within what
 * the native side accepts: highWaterMark stops one below maxQueuedBytes'
 * maximum so the derived maxQueuedBytes (highWaterMark + 1) is always valid.
 */
export const OPTION_RANGES = {
  maxConnections: [1, MAX_SLOTS],
  poolSize: [1, MAX_SLOTS],
  poolGrowth: [1, MAX_SLOTS],
  backlog: [1, 65535],
  highWaterMark: [0, MAX_BYTES - 1],
  maxQueuedBytes: [1, MAX_BYTES],
  acceptBatch: [1, 65536],
  idleTimeout: [0, MAX_MS],
  shrinkDelay: [0, MAX_MS],
  closeLinger: [0, MAX_MS],
} as const satisfies Partial<Record<keyof ServerOptions, readonly [number, number]>>;

/**
 * @internal
 * The range of every numeric argument of a per-session control (Session's
 * setTimeout, setKeepAlive), in milliseconds, as node:net's timers take them.
 */
export const SESSION_RANGES = {
  timeout: [0, MAX_MS],
  keepAliveDelay: [0, MAX_MS],
} as const;

/** @internal A per-session control's argument, checked against SESSION_RANGES. */
export function checkSessionArg(key: keyof typeof SESSION_RANGES, name: string, value: unknown): number {
  const [min, max] = SESSION_RANGES[key];
  return checkInteger(name, value, min, max);
}

type Ranges = { readonly [key: string]: readonly [number, number] };

const CLIENT_KEYS = [
  'maxConnections',
  'poolSize',
  'poolGrowth',
  'noDelay',
  'highWaterMark',
  'maxQueuedBytes',
  'driver',
  'backend',
  'threads',
  'idleTimeout',
  'allowHalfOpen',
  'shrinkDelay',
  'closeLinger',
];
const KEYS = {
  client: new Set(CLIENT_KEYS),
  server: new Set([...CLIENT_KEYS, 'backlog', 'ipv6Only', 'acceptBatch', 'reusePort', 'proxyProtocol']),
};

/** Every backend name the API knows, whether or not this build has it. */
const BACKEND_NAMES: readonly BackendName[] = ['epoll', 'io_uring', 'iocp', 'libuv'];

/** The backends this build of the addon has, 'auto''s choices first, in its order. */
export function backends(): BackendName[] {
  return [...binding.backends];
}

/** What an endpoint runs when neither options.backend nor ACCEPTPOOL_BACKEND names a backend. */
export function defaultBackend(): BackendName | 'auto' {
  return binding.defaultBackend;
}

/** options.backend, or ACCEPTPOOL_BACKEND when it is absent, checked against this build. */
function resolveBackend(options: object): BackendName | 'auto' {
  const given: unknown = (options as { backend?: unknown }).backend;
  const fromEnv = given === undefined ? process.env.ACCEPTPOOL_BACKEND : undefined;
  const useEnv = fromEnv !== undefined && fromEnv !== '';
  const value: unknown = given !== undefined ? given : useEnv ? fromEnv : OPTION_DEFAULTS.backend;
  const what = useEnv ? 'ACCEPTPOOL_BACKEND' : 'options.backend';
  if (value === 'auto') return value;
  if (typeof value !== 'string' || !(BACKEND_NAMES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${what} must be 'auto' or one of ${BACKEND_NAMES.join(', ')}, got ${describe(value)}`);
  }
  const name = value as BackendName;
  if (!binding.backends.includes(name)) {
    throw new UnsupportedError(`${what} '${name}' is not available on ${process.platform}: this build has ${binding.backends.join(', ')}`);
  }
  return name;
}

/** @internal */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/** `options[key]` checked against its range in `ranges`, or `fallback` when absent. */
function optionalInteger<R extends Ranges>(options: object, ranges: R, key: keyof R & string, fallback: number): number {
  const v: unknown = (options as Record<string, unknown>)[key];
  const [min, max] = ranges[key];
  return v === undefined ? fallback : checkInteger(`options.${key}`, v, min, max);
}

function optionalBoolean<O extends object>(o: O, key: keyof O & string, fallback: boolean): boolean {
  const v: unknown = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`options.${key} must be a boolean, got ${describe(v)}`);
  return v;
}

/** @internal */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** The bytes native code reads per trusted range: family, prefix bits, 16 address bytes. */
const TRUSTED_ENTRY_BYTES = 18;

/** One trusted range ('10.0.0.0/8', '::1/128', or a bare address) into `out` at `at`. */
function parseCidr(text: unknown, out: Uint8Array, at: number): void {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`options.proxyProtocol.trusted: ${describe(text)} ${why}`);
  };
  if (typeof text !== 'string') return bad('is not a string');
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const family = net.isIP(ip);
  if (family === 0) return bad('is not an IPv4 or IPv6 address or range');
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > bits) return bad(`has a prefix length that is not 0 to ${bits}`);
    prefix = Number(p);
  }
  out[at] = family;
  out[at + 1] = prefix;
  const addr = out.subarray(at + 2, at + TRUSTED_ENTRY_BYTES);
  if (family === 4) {
    ip.split('.').forEach((part, i) => (addr[i] = Number(part)));
  } else {
    addr.set(ipv6Bytes(ip));
  }
}

/** 16 bytes of a valid IPv6 address (net.isIPv6 said so), an IPv4 tail included. */
function ipv6Bytes(ip: string): Uint8Array {
  const bytes = new Uint8Array(16);
  const zone = ip.indexOf('%');
  const text = zone < 0 ? ip : ip.slice(0, zone);
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map(Number);
        groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        groups.push(parseInt(g, 16));
      }
    }
    return groups;
  };
  const gap = text.indexOf('::');
  const head = toGroups(gap < 0 ? text : text.slice(0, gap));
  const tail = gap < 0 ? [] : toGroups(text.slice(gap + 2));
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 255;
  });
  return bytes;
}

/** The proxyProtocol option, checked, as native code takes it. */
function resolveProxy(value: unknown): { proxyProtocol: boolean; proxyTimeoutMs: number; proxyTrusted: Uint8Array } {
  if (value === undefined) return { proxyProtocol: false, proxyTimeoutMs: 0, proxyTrusted: new Uint8Array(0) };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`options.proxyProtocol must be an object { trusted, timeout? }, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (key !== 'trusted' && key !== 'timeout') throw new InvalidArgumentError(`unknown proxyProtocol option ${JSON.stringify(key)}`);
  }
  const { trusted, timeout } = value as Partial<ProxyProtocolOptions>;
  if (!Array.isArray(trusted) || trusted.length === 0) {
    throw new InvalidArgumentError(`options.proxyProtocol.trusted must be a non-empty array of CIDR ranges, got ${describe(trusted)}`);
  }
  const ranges = new Uint8Array(trusted.length * TRUSTED_ENTRY_BYTES);
  trusted.forEach((text: unknown, i) => parseCidr(text, ranges, i * TRUSTED_ENTRY_BYTES));
  const ms = timeout === undefined ? PROXY_DEFAULTS.timeout : checkInteger('options.proxyProtocol.timeout', timeout, 1, MAX_MS);
  return { proxyProtocol: true, proxyTimeoutMs: ms, proxyTrusted: ranges };
}

/** @internal */
export function resolveOptions(options: ServerOptions | ClientOptions | undefined, kind: 'server' | 'client'): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KEYS[kind].has(key)) throw new InvalidArgumentError(`unknown ${kind} option ${JSON.stringify(key)}`);
  }
  const d = OPTION_DEFAULTS;
  const maxConnections = optionalInteger(options, OPTION_RANGES, 'maxConnections', d.maxConnections);
  const poolGrowth = optionalInteger(options, OPTION_RANGES, 'poolGrowth', Math.min(d.poolGrowth, maxConnections));
  const poolSize = optionalInteger(options, OPTION_RANGES, 'poolSize', Math.min(d.poolSize, maxConnections));
  const highWaterMark = optionalInteger(options, OPTION_RANGES, 'highWaterMark', d.highWaterMark);
  const maxQueuedBytes = optionalInteger(options, OPTION_RANGES, 'maxQueuedBytes', Math.max(d.maxQueuedBytes, highWaterMark + 1));
  if (maxQueuedBytes <= highWaterMark) {
    throw new InvalidArgumentError(`options.maxQueuedBytes (${maxQueuedBytes}) must exceed options.highWaterMark (${highWaterMark})`);
  }
  let driver: Driver = d.driver;
  if (options.driver !== undefined) {
    if (options.driver !== 'inline' && options.driver !== 'threaded') {
      throw new InvalidArgumentError(`options.driver must be 'inline' or 'threaded', got ${describe(options.driver)}`);
    }
    driver = options.driver;
  }
  let threads = 1;
  if (options.threads !== undefined) {
    threads = options.threads === 'inline' ? 0 : checkInteger('options.threads', options.threads, 0, maxThreads());
    const fromThreads: Driver = threads === 0 ? 'inline' : 'threaded';
    if (options.driver !== undefined && options.driver !== fromThreads) {
      throw new InvalidArgumentError(`options.threads (${String(options.threads)}) contradicts options.driver (${options.driver})`);
    }
    driver = fromThreads;
  }
  if (driver === 'inline' && !INLINE_AVAILABLE) {
    throw new InvalidArgumentError(
      `options.driver 'inline' is not available on ${process.platform}: its backend (IOCP) has no descriptor for Node's loop to watch; use 'threaded'`,
    );
  }
  const reusePort = kind === 'server' && optionalBoolean(options as ServerOptions, 'reusePort', d.reusePort);
  if (reusePort && !REUSE_PORT_AVAILABLE) {
    throw new UnsupportedError(`options.reusePort: ${process.platform} has no SO_REUSEPORT that balances connections over listeners`);
  }
  const threadListeners = (options as { [kThreadListeners]?: unknown })[kThreadListeners] ?? 'reuseport';
  if (threadListeners !== 'reuseport' && threadListeners !== 'shared') {
    throw new InvalidArgumentError(`thread listeners must be 'reuseport' or 'shared', got ${describe(threadListeners)}`);
  }
  const idleTimeout = optionalInteger(options, OPTION_RANGES, 'idleTimeout', d.idleTimeout);
  const shrinkDelay = optionalInteger(options, OPTION_RANGES, 'shrinkDelay', d.shrinkDelay);
  const closeLinger = optionalInteger(options, OPTION_RANGES, 'closeLinger', d.closeLinger);
  return {
    native: {
      maxConnections,
      poolSize,
      poolGrowth,
      backlog: optionalInteger(options, OPTION_RANGES, 'backlog', d.backlog),
      highWaterMark,
      maxQueuedBytes,
      acceptBatch: optionalInteger(options, OPTION_RANGES, 'acceptBatch', d.acceptBatch),
      idleTimeoutMs: idleTimeout,
      shrinkDelaySeconds: Math.ceil(shrinkDelay / 1000),
      closeLingerMs: closeLinger,
      noDelay: optionalBoolean(options, 'noDelay', d.noDelay),
      driver,
      backend: resolveBackend(options),
      threads: Math.max(1, threads),
      reusePort,
      threadListeners,
      ...resolveProxy((options as ServerOptions).proxyProtocol),
    },
    allowHalfOpen: optionalBoolean(options, 'allowHalfOpen', d.allowHalfOpen),
    ipv6Only: optionalBoolean(options as ServerOptions, 'ipv6Only', d.ipv6Only),
  };
}

/** Options of close() (server or client). */
export interface CloseOptions {
  /**
   * Milliseconds the open sessions may go on and end by themselves after
   * accepting stops, before the rest are closed with 'shutdown' (default 0:
   * close them now).
   */
  drain?: number;
}

/** @internal */
export function resolveCloseOptions(options: CloseOptions | undefined): { drain: number } {
  if (options === undefined) return { drain: 0 };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`close options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'drain') throw new InvalidArgumentError(`unknown close option ${JSON.stringify(key)}`);
  }
  return { drain: options.drain === undefined ? 0 : checkInteger('options.drain', options.drain, 0, MAX_MS) };
}

/** Options of one outgoing connection (Client.connect(), connect()). */
export interface ConnectOptions {
  /** Numeric IP to bind before connecting (e.g. a 127.0.0.x to spread sources). */
  localAddress?: string;
  /** Local port to bind (default 0: any). */
  localPort?: number;
  /** Milliseconds before an attempt fails with ETIMEDOUT (default 0: the OS's own limit). */
  timeout?: number;
}

/** @internal */
export interface ResolvedConnectOptions {
  localAddress: string | undefined;
  localPort: number;
  /** 4 or 6 for a localAddress (as net.isIP() says), else 0. */
  localFamily: number;
  timeout: number;
}

/** @internal */
export function resolveConnectOptions(options: ConnectOptions): ResolvedConnectOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError(`connect options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'localAddress' && key !== 'localPort' && key !== 'timeout') {
      throw new InvalidArgumentError(`unknown connect option ${JSON.stringify(key)}`);
    }
  }
  let localFamily = 0;
  if (options.localAddress !== undefined) {
    localFamily = typeof options.localAddress === 'string' ? net.isIP(options.localAddress) : 0;
    if (localFamily === 0)
      throw new InvalidArgumentError(`localAddress must be a numeric IP address, got ${describe(options.localAddress)}`);
  }
  const localPort = options.localPort === undefined ? 0 : checkInteger('localPort', options.localPort, 0, 65535);
  if (localPort !== 0 && options.localAddress === undefined) {
    throw new InvalidArgumentError('localPort needs localAddress');
  }
  const timeout = options.timeout === undefined ? 0 : checkInteger('timeout', options.timeout, 0, MAX_MS);
  return { localAddress: options.localAddress, localPort, localFamily, timeout };
}

/** Options of runLoad() and LoadGenerator.run(): what load to put on which server. */
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
   * 'http': keep-alive connections, one `GET /` in flight on each; every
   * response must be a 200 framed by Content-Length, with nothing after it.
   * 'http-close': connect, `GET /` with `Connection: close`, check the
   * response as 'http' does, reset.
   */
  mode?: LoadMode;
  /** Connects in flight (storms) or connections held (echo, http, idle), over all threads (default 64). */
  connections?: number;
  /** Native threads, each with its own engine (default 1). */
  threads?: number;
  /** Measured milliseconds; for 'idle' the longest hold (default 3000). */
  duration?: number;
  /** Milliseconds of load before measuring starts (default 500). */
  warmup?: number;
  /** Bytes per request of reqrep and echo (default 16). */
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
  /** Echo, http and idle: milliseconds opening every connection may take before the run starts anyway (default 20000). */
  rampTimeout?: number;
  /** Milliseconds before a connection that failed is tried again (default 10). */
  retryDelay?: number;
  /**
   * Connects in progress at once per thread, at most (default 256; 0 = no
   * cap), so opening thousands of connections does not overflow the
   * server's accept queue.
   */
  maxConnecting?: number;
  /**
   * Start every connection with a PROXY protocol v2 header naming a client
   * of its own in 198.18.0.0/15, as a balancer does (default false): for a
   * server with proxyProtocol.
   */
  proxyHeader?: boolean;
}

const DAY_MS = 86_400_000;

/** @internal Every load generator option's default but the port's. */
export const LOAD_OPTION_DEFAULTS = {
  host: '127.0.0.1',
  mode: 'connect-close',
  connections: 64,
  threads: 1,
  duration: 3000,
  warmup: 500,
  messageSize: 16,
  /** When host is in 127.0.0.0/8; else 0 (the OS chooses). */
  sourceAddresses: 8,
  firstSource: '127.0.0.1',
  timeout: 3000,
  rampTimeout: 20_000,
  retryDelay: 10,
  maxConnecting: 256,
  proxyHeader: false,
} as const satisfies Required<Omit<LoadOptions, 'port'>>;

/** @internal The range of every numeric load generator option. */
export const LOAD_OPTION_RANGES = {
  connections: [1, 1_000_000],
  threads: [1, wire.maxLoadThreads],
  duration: [0, DAY_MS],
  warmup: [0, DAY_MS],
  messageSize: [1, wire.maxLoadMessage],
  sourceAddresses: [0, 65536],
  timeout: [1, DAY_MS],
  rampTimeout: [0, DAY_MS],
  retryDelay: [0, 60_000],
  maxConnecting: [0, 1_000_000],
} as const satisfies Partial<Record<keyof LoadOptions, readonly [number, number]>>;

const LOAD_KEYS = new Set<string>(['port', 'host', 'mode', 'firstSource', 'proxyHeader', ...Object.keys(LOAD_OPTION_RANGES)]);

/** An IPv4 address as an unsigned 32-bit number, or throws naming the option. */
function ipv4(name: string, value: unknown): number {
  if (typeof value !== 'string' || !net.isIPv4(value)) {
    throw new InvalidArgumentError(`${name} must be a numeric IPv4 address, got ${describe(value)}`);
  }
  return value.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** @internal Checks every load generator option and fills in the defaults. */
export function resolveLoadOptions(options: LoadOptions): { mode: LoadMode; native: NativeLoadOptions } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!LOAD_KEYS.has(key)) throw new InvalidArgumentError(`unknown load generator option ${JSON.stringify(key)}`);
  }
  const d = LOAD_OPTION_DEFAULTS;
  const modes = wire.loadModes;
  const mode = options.mode ?? d.mode;
  if (!modes.includes(mode)) {
    throw new InvalidArgumentError(`options.mode must be one of ${modes.join(', ')}, got ${describe(mode)}`);
  }
  const port = checkInteger('options.port', options.port, 1, 65535);
  const remote = ipv4('options.host', options.host ?? d.host);
  const loopback = remote >>> 24 === 127;
  const firstSource = ipv4('options.firstSource', options.firstSource ?? d.firstSource);
  const sources = optionalInteger(options, LOAD_OPTION_RANGES, 'sourceAddresses', loopback ? d.sourceAddresses : 0);
  if (sources > 0 && firstSource + sources - 1 > 0xffffffff) {
    throw new InvalidArgumentError('options.sourceAddresses runs past 255.255.255.255');
  }
  return {
    mode,
    native: {
      mode: modes.indexOf(mode),
      remote,
      port,
      firstSource,
      sources,
      connections: optionalInteger(options, LOAD_OPTION_RANGES, 'connections', d.connections),
      threads: optionalInteger(options, LOAD_OPTION_RANGES, 'threads', d.threads),
      messageSize: optionalInteger(options, LOAD_OPTION_RANGES, 'messageSize', d.messageSize),
      durationMs: optionalInteger(options, LOAD_OPTION_RANGES, 'duration', d.duration),
      warmupMs: optionalInteger(options, LOAD_OPTION_RANGES, 'warmup', d.warmup),
      rampTimeoutMs: optionalInteger(options, LOAD_OPTION_RANGES, 'rampTimeout', d.rampTimeout),
      timeoutMs: optionalInteger(options, LOAD_OPTION_RANGES, 'timeout', d.timeout),
      retryDelayMs: optionalInteger(options, LOAD_OPTION_RANGES, 'retryDelay', d.retryDelay),
      maxConnecting: optionalInteger(options, LOAD_OPTION_RANGES, 'maxConnecting', d.maxConnecting),
      proxyHeader: optionalBoolean(options, 'proxyHeader', d.proxyHeader),
    },
  };
}
