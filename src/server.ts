/**
 * The listener. Accepting, reading and writing happen in native code; this
 * class turns each native batch of events into Session objects and events,
 * and forwards commands by session id.
 */
import { EventEmitter } from 'node:events';
import * as dns from 'node:dns';
import * as net from 'node:net';

import {
  AcceptPoolSystemError,
  InvalidArgumentError,
  InvalidStateError,
  ServerClosedError,
} from './errors';
import { binding, CloseMode, EventType, SendResult } from './native';
import type { Bytes, NativeErrorInfo, NativeListenResult, NativeServer, NativeStats } from './native';
import { checkInteger, describe, resolveServerOptions } from './options';
import type { Driver, ResolvedServerOptions, ServerOptions } from './options';
import { CLOSE_REASONS, Session } from './session';
import type { CloseReason, SendData, SessionOwner } from './session';

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface ServerStats extends NativeStats {
  backend: string;
  driver: Driver;
}

export interface ServerEvents {
  session: [session: Session];
  data: [session: Session, chunk: Buffer];
  drain: [session: Session];
  end: [session: Session];
  sessionClose: [session: Session, reason: CloseReason, err?: Error];
  /**
   * Threaded driver only: a send or close that was accepted (returned true)
   * while the id looked live, but the I/O thread found the session gone by
   * the time it acted. Nothing was delivered; staleCommands counts it.
   */
  staleCommand: [id: number, command: 'send' | 'close'];
  listening: [address: AddressInfo];
  close: [];
  error: [err: Error];
}

/** Event records held in one shared Float64Array: 4 doubles per event. */
const RECORDS_PER_BATCH = 8192;
const SLOT_MASK = 0xffffff;

type State = 'idle' | 'listening' | 'closing' | 'closed';

// Typed events by declaration merging: no wrapper methods at run time, so an
// emit costs what EventEmitter's own does.
export interface Server {
  on<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this;
  once<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this;
  off<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this;
  addListener<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this;
  removeListener<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this;
  emit<E extends keyof ServerEvents>(event: E, ...args: ServerEvents[E]): boolean;
}

export class Server extends EventEmitter implements SessionOwner {
  private readonly opts: ResolvedServerOptions;
  private readonly records = new Float64Array(RECORDS_PER_BATCH * 4);
  private native: NativeServer | null;
  // Live sessions by slot (id & 0xffffff); a dense array keeps lookup cheap.
  private readonly sessions: (Session | undefined)[] = [];
  private state: State = 'idle';
  private bound: AddressInfo | null = null;
  private closeWaiters: (() => void)[] = [];
  private jsStale = 0;
  private listenPending = false;

  constructor(options?: ServerOptions) {
    super();
    this.opts = resolveServerOptions(options);
    this.native = new binding.NativeServer(this.opts.native, this.records, this.onBatch);
  }

  /** Binds and starts accepting. Resolves with the bound address (port 0 picks one). */
  async listen(port: number, host?: string): Promise<AddressInfo> {
    checkInteger('port', port, 0, 65535);
    if (host !== undefined && (typeof host !== 'string' || host.length === 0)) {
      throw new InvalidArgumentError(`host must be a non-empty string, got ${describe(host)}`);
    }
    if (this.state === 'closing' || this.state === 'closed') throw new ServerClosedError();
    if (this.state === 'listening' || this.listenPending) throw new InvalidStateError('the server is already listening');
    this.listenPending = true;
    try {
      const ip = await resolveHost(host);
      // close() may have run while the name was resolving.
      if (this.state !== 'idle' || this.native === null) throw new ServerClosedError();
      const result = this.native.listen(ip, port, this.opts.ipv6Only);
      if (isErrorInfo(result)) {
        throw new AcceptPoolSystemError({ ...result, address: ip, port });
      }
      this.bound = result as NativeListenResult;
      this.state = 'listening';
      this.emit('listening', this.bound);
      return this.bound;
    } finally {
      this.listenPending = false;
    }
  }

  /** The bound address, or null before listen() has resolved. */
  address(): AddressInfo | null {
    return this.bound;
  }

  get listening(): boolean {
    return this.state === 'listening';
  }

  /**
   * Sends to a session by id. True when sent or queued below highWaterMark.
   * False when the id is stale (counted in stats().staleCommands, nothing is
   * sent), the session is ending, the queue is above highWaterMark (the bytes
   * are queued; wait for 'drain'), or the hard limit closed it ('overflow').
   */
  send(id: number, data: SendData): boolean {
    checkId(id);
    const bytes = toBytes(data);
    const s = this.sessions[id & SLOT_MASK];
    if (s === undefined || s.id !== id || this.native === null) {
      this.jsStale++;
      return false;
    }
    // Ending sessions refuse sends here, so both drivers answer the same.
    if (s.ending) return false;
    return this.native.send(id, bytes) === SendResult.Ok;
  }

  /** Flushes then closes a session (reason 'local'). False if the id is stale. */
  closeSession(id: number): boolean {
    return this.command(id, CloseMode.Graceful);
  }

  /** @internal */
  abortSession(id: number): boolean {
    return this.command(id, CloseMode.Abort);
  }

  /** @internal */
  endSession(id: number): boolean {
    return this.command(id, CloseMode.End);
  }

  /** @internal */
  bufferedAmountOf(id: number): number {
    return this.native === null ? -1 : this.native.bufferedAmount(id);
  }

  /**
   * One call, fanned out in native code: sends `data` to every listed id (or
   * every open session). Returns the number of sessions reached; stale ids
   * are skipped and counted.
   */
  broadcast(data: SendData, ids?: readonly number[] | Float64Array): number {
    const bytes = toBytes(data);
    if (ids !== undefined && !Array.isArray(ids) && !(ids instanceof Float64Array)) {
      throw new InvalidArgumentError(`ids must be an array of session ids, got ${describe(ids)}`);
    }
    if (ids !== undefined) for (let i = 0; i < ids.length; i++) checkId(ids[i]);
    if (this.native === null) return 0;
    if (ids === undefined) {
      // Inline: native code walks its own table and counts exactly. Threaded:
      // it cannot answer synchronously, so name the sessions JS knows.
      if (this.opts.native.driver === 'inline') return this.native.broadcast(bytes);
      return this.broadcastTo(bytes, this.sessions, this.sessions.length, false);
    }
    return this.broadcastTo(bytes, ids, ids.length, true);
  }

  private broadcastTo(bytes: Bytes, list: ArrayLike<number | Session | undefined>, length: number, byId: boolean): number {
    const live = new Float64Array(length);
    let n = 0;
    for (let i = 0; i < length; i++) {
      const item = list[i];
      if (item === undefined) continue;
      const id = byId ? (item as number) : (item as Session).id;
      const s = this.sessions[id & SLOT_MASK];
      if (s === undefined || s.id !== id) {
        this.jsStale++;
      } else if (!s.ending) {
        live[n++] = id;
      }
    }
    return n === 0 ? 0 : this.native!.broadcast(bytes, live.subarray(0, n));
  }

  /** Counters of the pool, the accept path and traffic. */
  stats(): ServerStats {
    const driver = this.opts.native.driver;
    if (this.native === null) {
      return { ...this.lastStats, driver, staleCommands: this.lastStats.staleCommands + this.jsStale };
    }
    const s = this.native.stats();
    this.lastStats = s;
    return { ...s, driver, staleCommands: s.staleCommands + this.jsStale };
  }

  /**
   * Stops accepting, closes every session (reason 'shutdown') and resolves
   * once all of them are closed and their events delivered.
   */
  close(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (this.state === 'closing') return done;
    if (this.state === 'idle') {
      this.state = 'closing';
      this.finishClose();
      return done;
    }
    this.state = 'closing';
    this.native?.shutdown();
    return done;
  }

  /** Let the process exit while the server is still listening. */
  unref(): this {
    this.native?.setRef(false);
    return this;
  }

  ref(): this {
    this.native?.setRef(true);
    return this;
  }

  private lastStats: NativeStats = {
    poolSize: 0, poolFree: 0, inUse: 0, peakInUse: 0, growths: 0, shrinks: 0, accepts: 0, acceptErrors: 0,
    emfile: 0, shed: 0, acceptPauses: 0, staleCommands: 0, overflows: 0, timeouts: 0, bytesIn: 0, bytesOut: 0,
    sendBlocks: 0, backend: binding.platformBackend ?? 'none', driver: 'inline',
  };

  private command(id: number, mode: CloseMode): boolean {
    checkId(id);
    const s = this.sessions[id & SLOT_MASK];
    if (s === undefined || s.id !== id || this.native === null) {
      this.jsStale++;
      return false;
    }
    s.ending = true;
    return this.native.closeSession(id, mode);
  }

  private finishClose(): void {
    const native = this.native;
    if (native !== null) {
      this.lastStats = native.stats();
      this.native = null;
      // Not from inside the native callback that reported the end.
      setImmediate(() => native.destroy());
    }
    this.state = 'closed';
    this.sessions.length = 0;
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
    this.emit('close');
  }

  /** One native call per batch: decode every record and dispatch it. */
  private readonly onBatch = (count: number, data: Buffer | undefined, base: number): void => {
    const r = this.records;
    for (let i = 0; i < count; i++) {
      const o = i * 4;
      try {
        this.dispatch(r[o], r[o + 1], r[o + 2], r[o + 3], data, base);
      } catch (err) {
        // A throwing handler must not stop the rest of the batch (sessions
        // would go out of step); it surfaces as an uncaught exception.
        process.nextTick(rethrow, err);
      }
    }
  };

  /** `base`: where this batch's bytes start in `data` (data offsets are relative to it). */
  private dispatch(type: number, id: number, a: number, b: number, data: Buffer | undefined, base: number): void {
    switch (type) {
      case EventType.Session: {
        const s = new Session(this, id, data as Buffer, base + a);
        this.sessions[id & SLOT_MASK] = s;
        this.emit('session', s);
        return;
      }
      case EventType.Data: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined) return;
        const chunk = (data as Buffer).subarray(base + a, base + a + b);
        if (s.ondata !== null) s.ondata(chunk);
        this.emit('data', s, chunk);
        return;
      }
      case EventType.Drain: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined) return;
        if (s.ondrain !== null) s.ondrain();
        this.emit('drain', s);
        return;
      }
      case EventType.End: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined) return;
        try {
          if (s.onend !== null) s.onend();
          this.emit('end', s);
        } finally {
          // Like net.Socket without allowHalfOpen: answer the peer's FIN with
          // ours once what the handlers queued has been sent (unless a
          // handler already closed or ended the session).
          if (!this.opts.allowHalfOpen && !s.ending && this.native !== null) {
            s.ending = true;
            this.native.closeSession(id, CloseMode.End);
          }
        }
        return;
      }
      case EventType.Close: {
        const slot = id & SLOT_MASK;
        const s = this.sessions[slot];
        if (s === undefined || s.id !== id) return;
        this.sessions[slot] = undefined;
        s.closed = true;
        const reason = CLOSE_REASONS[a & 0xff] ?? 'error';
        const code = a >>> 8;
        const onclose = s.onclose;
        // Errors are built only for someone who will see them.
        if (onclose === null && this.listenerCount('sessionClose') === 0) return;
        const err = code !== 0 ? closeError(code, b) : undefined;
        if (onclose !== null) onclose(reason, err);
        this.emit('sessionClose', s, reason, err);
        return;
      }
      case EventType.Stale:
        this.emit('staleCommand', id, a === 0 ? 'send' : 'close');
        return;
      case EventType.ServerClosed:
        this.finishClose();
        return;
      default:
        return;
    }
  }
}

function rethrow(err: unknown): never {
  throw err;
}

function closeError(code: number, raw: number): Error {
  // The stack would only show the batch dispatcher; skipping it makes a
  // storm of resets cheap.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new AcceptPoolSystemError({ code: binding.errorNames[code] ?? 'EUNKNOWN', errno: -raw, syscall: 'io' });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function isErrorInfo(v: NativeListenResult | NativeErrorInfo): v is NativeErrorInfo {
  return (v as NativeErrorInfo).code !== undefined;
}

function checkId(id: unknown): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new InvalidArgumentError(`session id must be a non-negative integer, got ${describe(id)}`);
  }
}

export function toBytes(data: SendData): Bytes {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data;
  throw new InvalidArgumentError(`data must be a Buffer, TypedArray, DataView, ArrayBuffer or string, got ${describe(data)}`);
}

async function resolveHost(host: string | undefined): Promise<string> {
  if (host === undefined) return '::';
  if (net.isIP(host) !== 0) return host;
  try {
    const { address } = await dns.promises.lookup(host);
    return address;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new AcceptPoolSystemError({ code: e.code ?? 'ENOTFOUND', errno: typeof e.errno === 'number' ? e.errno : 0, syscall: 'getaddrinfo', address: host });
  }
}
