/** Server options: their types, defaults and up-front validation. */
import { InvalidArgumentError } from './errors';
import type { NativeServerOptions } from './native';

export type Driver = 'inline' | 'threaded';

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
  /** 'inline' (on Node's loop) or 'threaded' (an I/O thread). */
  driver?: Driver;
  /** 0 = inline, 1 = threaded; the same choice as `driver`. */
  threads?: number;
  /** Close sessions idle this many milliseconds (reason 'timeout'); 0 = never (default). Resolution 1 s. */
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
   * Resolution 1 s.
   */
  closeLinger?: number;
}

/** Client options: the session-side subset of the server's. */
export type ClientOptions = Pick<
  ServerOptions,
  'maxConnections' | 'poolSize' | 'poolGrowth' | 'noDelay' | 'highWaterMark' | 'maxQueuedBytes' | 'driver' | 'threads' | 'idleTimeout' | 'allowHalfOpen' | 'shrinkDelay' | 'closeLinger'
>;

export interface ResolvedOptions {
  native: NativeServerOptions;
  allowHalfOpen: boolean;
  ipv6Only: boolean;
}

/** The Linux default, chosen by benchmarks/ (see README); the only driver on Windows. */
export const DEFAULT_DRIVER: Driver = 'threaded';
/** The inline driver needs a pollable descriptor, which IOCP does not have. */
const INLINE_AVAILABLE = process.platform !== 'win32';

const MAX_SLOTS = 2 ** 24;
const MAX_BYTES = 2 ** 30;
const MAX_MS = 2 ** 31 - 1;

/**
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

type NumericOption = keyof typeof OPTION_RANGES;

const CLIENT_KEYS = [
  'maxConnections', 'poolSize', 'poolGrowth', 'noDelay', 'highWaterMark', 'maxQueuedBytes',
  'driver', 'threads', 'idleTimeout', 'allowHalfOpen', 'shrinkDelay', 'closeLinger',
];
const KEYS = {
  client: new Set(CLIENT_KEYS),
  server: new Set([...CLIENT_KEYS, 'backlog', 'ipv6Only', 'acceptBatch']),
};

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

function optionalInteger(o: ServerOptions, key: NumericOption, fallback: number): number {
  const v = o[key];
  const [min, max] = OPTION_RANGES[key];
  return v === undefined ? fallback : checkInteger(`options.${key}`, v, min, max);
}

function optionalBoolean(o: ServerOptions, key: keyof ServerOptions, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`options.${key} must be a boolean, got ${describe(v)}`);
  return v;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

export function resolveOptions(options: ServerOptions | ClientOptions | undefined, kind: 'server' | 'client'): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KEYS[kind].has(key)) throw new InvalidArgumentError(`unknown ${kind} option ${JSON.stringify(key)}`);
  }
  const maxConnections = optionalInteger(options, 'maxConnections', 2 ** 20);
  const poolGrowth = optionalInteger(options, 'poolGrowth', Math.min(1024, maxConnections));
  const poolSize = optionalInteger(options, 'poolSize', Math.min(1024, maxConnections));
  const highWaterMark = optionalInteger(options, 'highWaterMark', 64 * 1024);
  const maxQueuedBytes = optionalInteger(options, 'maxQueuedBytes', Math.max(4 * 1024 * 1024, highWaterMark + 1));
  if (maxQueuedBytes <= highWaterMark) {
    throw new InvalidArgumentError(`options.maxQueuedBytes (${maxQueuedBytes}) must exceed options.highWaterMark (${highWaterMark})`);
  }
  let driver: Driver = DEFAULT_DRIVER;
  if (options.driver !== undefined) {
    if (options.driver !== 'inline' && options.driver !== 'threaded') {
      throw new InvalidArgumentError(`options.driver must be 'inline' or 'threaded', got ${describe(options.driver)}`);
    }
    driver = options.driver;
  }
  if (options.threads !== undefined) {
    const threads = checkInteger('options.threads', options.threads, 0, 1);
    const fromThreads: Driver = threads === 0 ? 'inline' : 'threaded';
    if (options.driver !== undefined && options.driver !== fromThreads) {
      throw new InvalidArgumentError(`options.threads (${threads}) contradicts options.driver (${options.driver})`);
    }
    driver = fromThreads;
  }
  if (driver === 'inline' && !INLINE_AVAILABLE) {
    throw new InvalidArgumentError(`options.driver 'inline' is not available on ${process.platform}: its backend (IOCP) has no descriptor for Node's loop to watch; use 'threaded'`);
  }
  const idleTimeout = optionalInteger(options, 'idleTimeout', 0);
  const shrinkDelay = optionalInteger(options, 'shrinkDelay', 30_000);
  const closeLinger = optionalInteger(options, 'closeLinger', 5_000);
  return {
    native: {
      maxConnections,
      poolSize,
      poolGrowth,
      backlog: optionalInteger(options, 'backlog', 511),
      highWaterMark,
      maxQueuedBytes,
      acceptBatch: optionalInteger(options, 'acceptBatch', 128),
      idleTimeoutSeconds: idleTimeout === 0 ? 0 : Math.max(1, Math.ceil(idleTimeout / 1000)),
      shrinkDelaySeconds: Math.ceil(shrinkDelay / 1000),
      closeLingerSeconds: Math.ceil(closeLinger / 1000),
      noDelay: optionalBoolean(options, 'noDelay', true),
      driver,
    },
    allowHalfOpen: optionalBoolean(options, 'allowHalfOpen', false),
    ipv6Only: optionalBoolean(options, 'ipv6Only', false),
  };
}
