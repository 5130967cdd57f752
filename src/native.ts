/** Loads the compiled addon and describes its (private) interface. */
import * as path from 'node:path';
import * as fs from 'node:fs';

import type {
  BackendName,
  CloseReason,
  Driver,
  EndpointStats,
  LoadMode,
  LoadPhase,
  LoadProgress,
  LoadResult,
  ProxyCommand,
  ProxyFamily,
  ProxyRejectReason,
  ProxyTransport,
  StaleCommand,
  StatsCounters,
} from './types';

/**
 * The wire format as the addon exports it (native/core/wire.h lists every
 * part). These declarations name what TypeScript relies on; the values come
 * from the addon only, and test/05.wire.test.ts checks that the addon has
 * exactly these names.
 */
export interface NativeWire {
  EventType: Numbered<
    | 'Session'
    | 'Data'
    | 'Drain'
    | 'End'
    | 'Close'
    | 'Stale'
    | 'ServerClosed'
    | 'Connected'
    | 'ConnectFailed'
    | 'Timeout'
    | 'Totals'
    | 'ProxyRejected'
    | 'Draining'
  >;
  SendResult: Numbered<'Ok' | 'Backpressure' | 'Stale' | 'Closed' | 'Overflow' | 'Failed'>;
  CloseMode: Numbered<'Graceful' | 'Abort' | 'End'>;
  SessionControl: Numbered<'Pause' | 'Resume' | 'Timeout' | 'NoDelay' | 'KeepAlive'>;
  Code: Numbered<'Ok' | 'Closed' | 'Invalid' | 'PoolFull' | 'NoMemory' | 'System' | 'Unsupported'>;
  ConnectStep: Numbered<'Connect' | 'Bind'>;
  /** By SysError value: the Node-style code ('ECONNRESET'). */
  errorNames: readonly string[];
  /** By native value, as in every named list. */
  closeReasons: readonly CloseReason[];
  staleCommands: readonly StaleCommand[];
  loadModes: readonly LoadMode[];
  loadPhases: readonly LoadPhase[];
  /** Every counter of stats(), in native order. */
  statsFields: readonly (keyof StatsCounters)[];
  /** Each record field's index among a record's doubles. */
  record: Numbered<'type' | 'id' | 'a' | 'b'>;
  recordDoubles: number;
  /** Records one batch holds at most (what JS's record array is sized for). */
  recordsPerBatch: number;
  /** The error word's fields: field = floor(word / 2^shift) mod 2^bits. */
  errorWord: Readonly<Record<'sys' | 'raw' | 'code' | 'step', Readonly<{ shift: number; bits: number }>>>;
  /** A kSession record's SocketAddress: its size and each part's byte offset. */
  address: Numbered<'size' | 'family' | 'port' | 'addr'>;
  /** A proxied kSession record's head (after its address): its size and each field's byte offset. */
  proxyHead: Numbered<'size' | 'version' | 'command' | 'family' | 'transport' | 'unix_bytes' | 'tlv_bytes' | 'source' | 'destination'>;
  /** A kProxyRejected record's info (after the peer's address): each field's byte offset. */
  proxyReject: Numbered<'reason' | 'error'>;
  proxyCommands: readonly ProxyCommand[];
  proxyFamilies: readonly ProxyFamily[];
  proxyTransports: readonly ProxyTransport[];
  /** Why a header was malformed, as text. */
  proxyErrors: readonly string[];
  proxyRejects: readonly ProxyRejectReason[];
  /** Each AF_UNIX address of a v2 header. */
  proxyUnixPathBytes: number;
  /** A session id is generation * 2^slotBits + slot. */
  slotBits: number;
  /** The most I/O threads (engines) one server or client runs. */
  maxThreads: number;
  /** What native code can hold at most, which option ranges stay within. */
  maxQueuedBytes: number;
  /** Bytes one session reads per round at most, and batches in flight (threaded): what may arrive after pause(). */
  readChunk: number;
  threadedBatches: number;
  maxLoadThreads: number;
  maxLoadMessage: number;
}

type Numbered<Name extends string> = Readonly<Record<Name, number>>;

export interface NativeListenResult {
  address: string;
  family: 'IPv4' | 'IPv6' | 'unix';
  port: number;
}

export interface NativeErrorInfo {
  code: string;
  errno: number;
  syscall: string;
}

export type Bytes = ArrayBufferView | ArrayBuffer;

/** What native query() reports of a live session (the address once the OS has one). */
export interface NativeSessionInfo {
  bytesWritten: number;
  localAddress?: string;
  localPort?: number;
  localFamily?: 'IPv4' | 'IPv6';
  /** The socket's options as the OS reads them back. */
  noDelay?: boolean;
  keepAlive?: boolean;
  /** Seconds idle before the first keep-alive probe. */
  keepAliveDelay?: number;
}

/** Every option, validated and complete (src/options.ts); native code has no defaults. */
export interface NativeServerOptions {
  maxConnections: number;
  poolSize: number;
  poolGrowth: number;
  backlog: number;
  highWaterMark: number;
  maxQueuedBytes: number;
  acceptBatch: number;
  idleTimeoutMs: number;
  shrinkDelaySeconds: number;
  closeLingerMs: number;
  noDelay: boolean;
  driver: Driver;
  /** 'auto' or a name from `backends`. */
  backend: BackendName | 'auto';
  /** Engines, one per I/O thread (1 for the inline driver). */
  threads: number;
  reusePort: boolean;
  /** How a server's engines share its port (native ListenerSharing). */
  threadListeners: ThreadListeners;
  proxyProtocol: boolean;
  /** Milliseconds a PROXY header may take to arrive whole. */
  proxyTimeoutMs: number;
  /** Trusted ranges, 18 bytes each: family (4 or 6), prefix bits, 16 address bytes. */
  proxyTrusted: Uint8Array;
}

/** @internal 'reuseport': a listener per thread (SO_REUSEPORT); 'shared': one listener, EPOLLEXCLUSIVE. */
export type ThreadListeners = 'reuseport' | 'shared';

export interface NativeServer {
  listen(host: string, port: number, ipv6Only: boolean): NativeListenResult | NativeErrorInfo;
  listenPath(path: string): NativeListenResult | NativeErrorInfo;
  listenFd(fd: number): NativeListenResult | NativeErrorInfo;
  /** 0 when started, else the error word of why not (as in a kConnectFailed record). */
  connect(token: number, host: string, port: number, localHost?: string, localPort?: number): number;
  abortConnect(token: number): void;
  /** A SendResult value. */
  send(id: number, data: Bytes): number;
  /** `mode`: a CloseMode value. */
  closeSession(id: number, mode: number): boolean;
  /**
   * `control`: a SessionControl value, with its arguments (unsigned 32-bit).
   * False for a stale id (inline; threaded: a 'staleCommand' follows).
   */
  control(id: number, control: number, a: number, b: number): boolean;
  /** A live session's counters, and if asked its local address and socket options (system calls); null for a stale id. */
  query(id: number, withAddress: boolean, withOptions: boolean): NativeSessionInfo | null;
  broadcast(data: Bytes, ids?: Float64Array): number;
  bufferedAmount(id: number): number;
  shutdown(): boolean;
  /** Stops accepting; the engine shuts down by itself once its last session has ended. */
  drain(): boolean;
  stats(): EndpointStats;
  setRef(ref: boolean): void;
  destroy(): void;
  /** Tests only, before listen/connect: the next occupant of `slot` gets `generation`. */
  setGenerationForTesting(slot: number, generation: number): void;
  /** The I/O thread that owns the session `id` names (also after destroy()). */
  threadOf(id: number): number;
}

/** What src/options.ts hands the native load generator: validated and complete. */
export interface NativeLoadOptions {
  /** A LoadMode value (its index in wire.loadModes). */
  mode: number;
  remote: number;
  port: number;
  firstSource: number;
  sources: number;
  connections: number;
  threads: number;
  messageSize: number;
  durationMs: number;
  warmupMs: number;
  rampTimeoutMs: number;
  timeoutMs: number;
  retryDelayMs: number;
  maxConnecting: number;
  proxyHeader: boolean;
}

/** What a run measured, before the wrapper adds the mode and CPU time. */
export type NativeLoadResult = Omit<LoadResult, 'mode' | 'cpuUs'>;

export interface NativeLoadGenerator {
  start(options: NativeLoadOptions): Promise<NativeLoadResult>;
  progress(): LoadProgress;
  stop(): void;
}

export interface NativeBinding {
  NativeServer: new (
    options: NativeServerOptions,
    records: Float64Array,
    onBatch: (count: number, data: Buffer | undefined, base: number) => void,
  ) => NativeServer;
  NativeLoadGenerator: new () => NativeLoadGenerator;
  wire: NativeWire;
  /** The backends compiled in, 'auto''s choices first, in its order. */
  backends: BackendName[];
  /** What runs when neither options.backend nor ACCEPTPOOL_BACKEND names a backend: the platform's fastest by the benchmark. */
  defaultBackend: BackendName | 'auto';
  /** The soft RLIMIT_NOFILE (descriptors this process may hold), or null when there is none (Windows) or it is unlimited. */
  descriptorLimit(): number | null;
}

/** The package's root: this file is dist/src/native.js. */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/**
 * What to do when no addon loads, for the case at hand: a checkout builds
 * with npm install; an installed package whose install script did not run
 * (--ignore-scripts) or that has no prebuild for this system builds with
 * npm rebuild.
 */
function loadFix(): string {
  if (fs.existsSync(path.join(PACKAGE_ROOT, 'src', 'index.ts'))) return 'run npm install in this checkout';
  return (
    'run `npm rebuild acceptpool` to build it from source (needs Python 3, make and a C++17 compiler; ' +
    'the install step names what is missing)'
  );
}

/**
 * The addon: the one ACCEPTPOOL_NATIVE names, else what node-gyp-build
 * finds: build/Release or build/Debug (a build from source), else the
 * prebuild for this platform, arch and libc under prebuilds/.
 */
function load(): NativeBinding {
  const override = process.env.ACCEPTPOOL_NATIVE;
  let file: string;
  if (override) {
    file = path.resolve(override);
    if (!fs.existsSync(file)) throw new Error(`acceptpool: ACCEPTPOOL_NATIVE names ${file}, which does not exist`);
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    try {
      file = nodeGypBuild.resolve(PACKAGE_ROOT);
    } catch (e) {
      throw new Error(
        `acceptpool: no native addon for ${process.platform}-${process.arch} (Node ${process.version}) ` +
          `in ${PACKAGE_ROOT}: neither build/Release nor a matching prebuild under prebuilds/; ${loadFix()}`,
        { cause: e },
      );
    }
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeBinding;
  } catch (e) {
    throw new Error(`acceptpool: the native addon ${file} failed to load (${(e as Error).message.split('\n')[0]}); ${loadFix()}`, {
      cause: e,
    });
  }
}

export const binding: NativeBinding = load();
