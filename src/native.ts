/** Loads the compiled addon and describes its (private) interface. */
import * as path from 'node:path';
import * as fs from 'node:fs';

import type { LoadProgress, LoadResult } from './loadgen';

/** The record layout the native side writes: [type, id, a, b] per event. */
export const enum EventType {
  Session = 1,
  Data = 2,
  Drain = 3,
  End = 4,
  Close = 5,
  Stale = 6,
  ServerClosed = 7,
  Connected = 8,
  ConnectFailed = 9,
}

export const enum SendResult {
  Ok = 0,
  Backpressure = 1,
  Stale = 2,
  Closed = 3,
  Overflow = 4,
  Failed = 5,
}

export const enum CloseMode {
  Graceful = 0,
  Abort = 1,
  End = 2,
}

export interface NativeStats {
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
  /** The backend's own counters (IOCP: accept pool, socket reuse), when it has any. */
  backendCounters?: Record<string, number>;
  backend: string;
  driver: string;
}

export interface NativeListenResult {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface NativeErrorInfo {
  code: string;
  errno: number;
  syscall: string;
}

export type Bytes = ArrayBufferView | ArrayBuffer;

export interface NativeServerOptions {
  maxConnections: number;
  poolSize: number;
  poolGrowth: number;
  backlog: number;
  highWaterMark: number;
  maxQueuedBytes: number;
  acceptBatch: number;
  idleTimeoutSeconds: number;
  shrinkDelaySeconds: number;
  closeLingerSeconds: number;
  noDelay: boolean;
  driver: 'inline' | 'threaded';
}

export interface NativeServer {
  listen(host: string, port: number, ipv6Only: boolean): NativeListenResult | NativeErrorInfo;
  /** True, an OS failure, or the native Code of a library failure (as in kConnectFailed). */
  connect(token: number, host: string, port: number, localHost?: string, localPort?: number): true | NativeErrorInfo | number;
  abortConnect(token: number): void;
  send(id: number, data: Bytes): SendResult;
  closeSession(id: number, mode: CloseMode): boolean;
  broadcast(data: Bytes, ids?: Float64Array): number;
  bufferedAmount(id: number): number;
  shutdown(): boolean;
  stats(): NativeStats;
  setRef(ref: boolean): void;
  destroy(): void;
  /** Tests only, before listen/connect: the next occupant of `slot` gets `generation`. */
  setGenerationForTesting(slot: number, generation: number): void;
}

/** What src/loadgen.ts hands the native load generator (validated there). */
export interface NativeLoadOptions {
  mode: 0 | 1 | 2 | 3;
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
  errorNames: string[];
  platformBackend?: string;
}

function load(): NativeBinding {
  const override = process.env.ACCEPTPOOL_NATIVE;
  const root = path.resolve(__dirname, '..', '..');
  const candidates = override
    ? [path.resolve(override)]
    : [path.join(root, 'build', 'Release', 'acceptpool.node'), path.join(root, 'build', 'Debug', 'acceptpool.node')];
  for (const file of candidates) {
    if (fs.existsSync(file)) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(file) as NativeBinding;
    }
  }
  throw new Error(`acceptpool: native addon not found (looked in ${candidates.join(', ')}); run npm install`);
}

export const binding: NativeBinding = load();
