/**
 * What a server and a client share: the native endpoint, the live sessions by
 * slot, the batch dispatcher and the commands by session id. Accepting or
 * connecting, reading and writing happen in native code; this class turns
 * each native batch of events into Session objects and events.
 */
import { AcceptPoolSystemError, InvalidArgumentError, InvalidStateError } from './errors';
import { IsolatingEmitter, call0, call1, call2, reportUncaught } from './isolate';
import { binding } from './native';
import type { Bytes, NativeServer, NativeSessionInfo } from './native';
import { checkSessionArg, describe, resolveCloseOptions } from './options';
import type { CloseOptions, ResolvedOptions } from './options';
import { CLOSE_REASONS, CloseStep, Session } from './session';
import type { SendData } from './session';
import { SessionSocket } from './session-socket';
import type { CloseReason, EndpointStats, StaleCommand } from './types';
import { CloseMode, SessionControl, decodeErrorWord, errorName, wire } from './wire';
import type { RecordError } from './wire';

export type { EndpointStats };

// The hot paths' constants, read from the addon once, at load.
const {
  Session: EV_SESSION,
  Data: EV_DATA,
  Drain: EV_DRAIN,
  End: EV_END,
  Close: EV_CLOSE,
  Stale: EV_STALE,
  ServerClosed: EV_SERVER_CLOSED,
  Connected: EV_CONNECTED,
  ConnectFailed: EV_CONNECT_FAILED,
  Timeout: EV_TIMEOUT,
  Totals: EV_TOTALS,
  ProxyRejected: EV_PROXY_REJECTED,
  Draining: EV_DRAINING,
} = wire.EventType;
const { type: R_TYPE, id: R_ID, a: R_A, b: R_B } = wire.record;
const RECORD_DOUBLES = wire.recordDoubles;
const SEND_OK = wire.SendResult.Ok;
const SEND_BACKPRESSURE = wire.SendResult.Backpressure;
const SLOT_MASK = 2 ** wire.slotBits - 1;
const STALE_COMMANDS: readonly StaleCommand[] = wire.staleCommands;

/** Events of a server or a client (typed on each class). */
export interface SessionEvents {
  /** A new session: accepted (server) or connected (client). */
  session: [session: Session];
  /** Bytes read from a session (the chunk is the listener's to keep). */
  data: [session: Session, chunk: Buffer];
  /** A session's send queue fell back to highWaterMark: send again. */
  drain: [session: Session];
  /** The peer half-closed (sent its FIN); see allowHalfOpen. */
  end: [session: Session];
  /** The session's own timeout (Session.setTimeout) passed; nothing was closed. */
  timeout: [session: Session];
  /** Why it closed; for 'reset' and 'error' the OS error (ECONNRESET, ...). */
  sessionClose: [session: Session, reason: CloseReason, err?: AcceptPoolSystemError];
  /**
   * Threaded driver only: a send or close that was accepted (returned true)
   * while the id looked live, but the I/O thread found the session gone (a
   * stale id, counted in staleCommands) or, for a send, already closing by
   * the time it acted. Nothing was delivered.
   */
  staleCommand: [id: number, command: StaleCommand];
  /**
   * close({ drain }): the listener is closed (new connects are refused); the
   * open sessions go on until they end or the deadline.
   */
  draining: [];
  /** close() is done: every session closed and its events delivered. */
  close: [];
  /**
   * EventEmitter's error event. acceptpool emits none today: a failed call
   * throws or rejects, a session's OS error comes with 'sessionClose', and a
   * listener's own exception goes to 'uncaughtException'.
   */
  error: [err: Error];
}

/** @internal */
export type EndpointState = 'idle' | 'running' | 'draining' | 'closing' | 'closed';

/**
 * @internal Tests only, not part of the API (index.ts does not export it): gives the
 * next occupant of a slot a chosen generation. A slot retires after
 * 2^29 - 1 occupants, which no test can make, so this is how the suite
 * reaches the end of a slot's generations over real sockets. Allowed before
 * listen() or the first connect() only (no I/O thread shares the table yet).
 */
export const kSetGenerationForTesting = Symbol('acceptpool.setGenerationForTesting');

/** A listener of an event whose arguments are `A`. */
export type ListenerOf<A> = A extends unknown[] ? (...args: A) => void : never;

// Typed events by declaration merging: no wrapper methods at run time, so an
// emit costs what EventEmitter's own does. Server and Client each name their
// events (E).
export interface Endpoint<E extends SessionEvents> {
  /** Adds a listener of `event`, typed by the event's arguments. */
  on<K extends keyof E & string>(event: K, listener: ListenerOf<E[K]>): this;
  /** Adds a listener of the next `event` only. */
  once<K extends keyof E & string>(event: K, listener: ListenerOf<E[K]>): this;
  /** Removes a listener of `event`. */
  off<K extends keyof E & string>(event: K, listener: ListenerOf<E[K]>): this;
  /** Adds a listener of `event` (as on()). */
  addListener<K extends keyof E & string>(event: K, listener: ListenerOf<E[K]>): this;
  /** Removes a listener of `event` (as off()). */
  removeListener<K extends keyof E & string>(event: K, listener: ListenerOf<E[K]>): this;
  /** Calls the listeners of `event` with `args`, as EventEmitter does. */
  emit<K extends keyof E & string>(event: K, ...args: E[K] extends unknown[] ? E[K] : never): boolean;
}

// Merged with the interface above on purpose (the typed events), which is
// also where E is used.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-unused-vars
export abstract class Endpoint<E extends SessionEvents> extends IsolatingEmitter {
  /** @internal */
  protected readonly opts: ResolvedOptions;
  /** @internal */
  protected native: NativeServer | null;
  /** @internal */
  protected state: EndpointState = 'idle';
  // Live sessions by slot (id & SLOT_MASK); a dense array keeps lookup cheap.
  private readonly sessions: (Session | undefined)[] = [];
  // Event records, one batch at a time (native code writes them here).
  private readonly records = new Float64Array(wire.recordsPerBatch * RECORD_DOUBLES);
  /** @internal Sessions open (known to JS and not yet reported closed). */
  protected liveSessions = 0;
  /** @internal Open sessions whose SessionSocket was unref()'d. */
  protected unrefSessions = 0;
  /** @internal See SessionOwner.socketSlice. */
  readonly socketSlice: number;
  private closeWaiters: (() => void)[] = [];
  private drainTimer: NodeJS.Timeout | null = null;
  private jsStale = 0;
  private lastStats: EndpointStats;
  // Engines (I/O threads) that have reported kServerClosed: close() is done
  // once every one has, each after its own sessions' last events.
  private enginesClosed = 0;
  private enginesDraining = 0;
  // Kept after close() drops `native`: it still names each id's thread.
  private readonly idDecoder: NativeServer;

  /** @internal */
  protected constructor(opts: ResolvedOptions) {
    super();
    this.opts = opts;
    this.socketSlice = SessionSocket.sliceFor(opts.native.highWaterMark, opts.native.maxQueuedBytes);
    this.native = new binding.NativeServer(opts.native, this.records, this.onBatch);
    this.idDecoder = this.native;
    this.lastStats = this.native.stats();
  }

  /** @internal The I/O thread that owns the session `id` names (native code's rule). */
  threadOf(id: number): number {
    return this.idDecoder.threadOf(id);
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
    const result = this.native.send(id, bytes);
    if (result === SEND_OK) return true;
    // Refused or closing in native code (stale there, overflow, a failed
    // write): the session is going, its close event on the way.
    if (result !== SEND_BACKPRESSURE) s.sendRefused = true;
    return false;
  }

  /**
   * Flushes then closes a session (reason 'local'). False if the id is
   * stale or the session is already closing (see Session.close()).
   */
  closeSession(id: number): boolean {
    return this.command(id, CloseMode.Graceful, CloseStep.Closing);
  }

  /** @internal */
  abortSession(id: number): boolean {
    return this.command(id, CloseMode.Abort, CloseStep.Destroyed);
  }

  /** @internal */
  endSession(id: number): boolean {
    return this.command(id, CloseMode.End, CloseStep.Ended);
  }

  /**
   * Stops reading a session by id (see Session.pause()). False if the id is
   * stale (counted in stats().staleCommands).
   */
  pauseSession(id: number): boolean {
    return this.setPaused(id, true);
  }

  /** Reads a paused session again (see Session.resume()). False if the id is stale. */
  resumeSession(id: number): boolean {
    return this.setPaused(id, false);
  }

  /**
   * Session.setTimeout() by id: 'timeout' after `ms` milliseconds without a
   * read or a write; 0 disables. False if the id is stale.
   */
  setSessionTimeout(id: number, ms: number): boolean {
    checkSessionArg('timeout', 'ms', ms);
    return this.control(id, SessionControl.Timeout, ms, 0);
  }

  /** Session.setNoDelay() by id. False if the id is stale. */
  setSessionNoDelay(id: number, on = true): boolean {
    if (typeof on !== 'boolean') throw new InvalidArgumentError(`noDelay must be a boolean, got ${describe(on)}`);
    return this.control(id, SessionControl.NoDelay, on ? 1 : 0, 0);
  }

  /** Session.setKeepAlive() by id. False if the id is stale. */
  setSessionKeepAlive(id: number, on = false, initialDelayMs = 0): boolean {
    if (typeof on !== 'boolean') throw new InvalidArgumentError(`keepAlive must be a boolean, got ${describe(on)}`);
    checkSessionArg('keepAliveDelay', 'initialDelay', initialDelayMs);
    return this.control(id, SessionControl.KeepAlive, on ? 1 : 0, initialDelayMs);
  }

  /**
   * @internal Native code's view of a live session (the local address and the
   * socket options read back only when asked), or null (not counted: a
   * getter, not a command). Tests read the options through it.
   */
  querySession(id: number, withAddress = false, withOptions = false): NativeSessionInfo | null {
    const s = this.sessions[id & SLOT_MASK];
    if (s === undefined || s.id !== id || this.native === null) return null;
    return this.native.query(id, withAddress, withOptions);
  }

  /** @internal */
  adjustUnrefSessions(delta: number): void {
    this.unrefSessions += delta;
    this.onSessionGone();
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

  /** Counters of the pool, the accept/connect path and traffic. */
  stats(): EndpointStats {
    const driver = this.opts.native.driver;
    if (this.native !== null) this.lastStats = this.native.stats();
    const s = this.lastStats;
    return { ...s, driver, staleCommands: s.staleCommands + this.jsStale };
  }

  /**
   * Closes every session gracefully (reason 'shutdown'; queued bytes get a
   * few seconds to flush, then each session closes as Session.close() does)
   * and resolves once all of them are closed and their events delivered.
   *
   * With `{ drain: ms }` (a deploy): stops accepting at once (the listener
   * closes, so a balancer's health check fails; 'draining' says when it has,
   * as the threaded driver closes it on its I/O thread), lets the open
   * sessions go on and end by themselves for up to `ms`, then closes the
   * rest as above. A plain close() during a drain ends it at once.
   */
  close(options?: CloseOptions): Promise<void> {
    const { drain } = resolveCloseOptions(options);
    if (this.state === 'closed') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (this.state === 'closing') return done;
    if (this.state === 'draining') {
      if (drain === 0) this.shutDown();
      return done;
    }
    if (drain > 0 && this.state === 'running' && this.native !== null) {
      this.state = 'draining';
      this.onClosing();
      this.native.drain();
      this.drainTimer = setTimeout(() => this.shutDown(), drain);
      return done;
    }
    this.shutDown();
    return done;
  }

  private shutDown(): void {
    this.clearDrainTimer();
    const wasRunning = this.state === 'running' || this.state === 'draining';
    this.state = 'closing';
    // Every session is closing now: sends are refused here, so both drivers
    // answer false (the threaded one could not know yet).
    for (const s of this.sessions) if (s !== undefined) markClosing(s);
    this.onClosing();
    if (wasRunning && this.native !== null) {
      this.native.shutdown();
    } else {
      this.finishClose();
    }
  }

  private clearDrainTimer(): void {
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.drainTimer = null;
  }

  /** Let the process exit while this endpoint is still open. */
  unref(): this {
    this.native?.setRef(false);
    return this;
  }

  /** Keep the process alive while this endpoint is open again (the default). */
  ref(): this {
    this.native?.setRef(true);
    return this;
  }

  /** @internal See kSetGenerationForTesting. */
  [kSetGenerationForTesting](slot: number, generation: number): void {
    if (this.native === null) throw new InvalidStateError('the endpoint is closed');
    this.native.setGenerationForTesting(slot, generation);
  }

  /** @internal Called when close() starts, before sessions close. */
  protected onClosing(): void {}

  /** @internal A kConnected record (client side). */
  protected onConnected(_id: number, _token: number): void {}

  /** @internal A kConnectFailed record (client side): `word` is its error word. */
  protected onConnectFailed(_id: number, _token: number, _word: number): void {}

  /** @internal A kProxyRejected record (server side): its data at `at`. */
  protected onProxyRejected(_data: Buffer, _at: number): void {}

  /** @internal A session was reported closed, or a SessionSocket was ref'd or unref'd. */
  protected onSessionGone(): void {}

  /** @internal Makes a session known to the dispatcher (and the id-based commands). */
  protected adopt(s: Session): void {
    // Accepted before close() reached the I/O thread: closing all the same.
    if (this.state === 'closing') markClosing(s);
    this.sessions[s.id & SLOT_MASK] = s;
    this.liveSessions++;
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
    return n === 0 || this.native === null ? 0 : this.native.broadcast(bytes, live.subarray(0, n));
  }

  // The answer comes from the session as JS knows it, so both drivers give
  // the same one. If the native side finds the session already gone (its
  // close event on the way), nothing happens there and it counts the command
  // in staleCommands (the threaded driver also emits 'staleCommand').
  private command(id: number, mode: number, step: CloseStep): boolean {
    const s = this.live(id);
    if (s === null) return false;
    if (s.closeStep >= step) return false;
    s.closeStep = step;
    (this.native as NativeServer).closeSession(id, mode);
    return true;
  }

  private setPaused(id: number, paused: boolean): boolean {
    const s = this.live(id);
    if (s === null) return false;
    if (s.paused === paused) return true;
    s.paused = paused;
    return (this.native as NativeServer).control(id, paused ? SessionControl.Pause : SessionControl.Resume, 0, 0);
  }

  // A control for a session JS knows; the answer of native code (inline: false
  // if it found the id stale; threaded: a 'staleCommand' follows instead).
  private control(id: number, kind: number, a: number, b: number): boolean {
    if (this.live(id) === null) return false;
    return (this.native as NativeServer).control(id, kind, a, b);
  }

  // The session JS knows by this id, or null (counted) when the id is stale
  // or the endpoint closed.
  private live(id: number): Session | null {
    checkId(id);
    const s = this.sessions[id & SLOT_MASK];
    if (s === undefined || s.id !== id || this.native === null) {
      this.jsStale++;
      return null;
    }
    return s;
  }

  private finishClose(): void {
    this.clearDrainTimer();
    const native = this.native;
    if (native !== null) {
      this.lastStats = native.stats();
      this.native = null;
      // Not from inside the native callback that reported the end.
      setImmediate(() => native.destroy());
    }
    this.state = 'closed';
    this.sessions.length = 0;
    this.liveSessions = 0;
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
    this.deliver0('close');
  }

  /** One native call per batch: decode every record and dispatch it. */
  private readonly onBatch = (count: number, data: Buffer | undefined, base: number): void => {
    const r = this.records;
    for (let i = 0; i < count; i++) {
      const o = i * RECORD_DOUBLES;
      try {
        this.dispatch(r[o + R_TYPE], r[o + R_ID], r[o + R_A], r[o + R_B], data, base);
      } catch (err) {
        // User callbacks are isolated where they are called; this only
        // keeps a library bug from stopping the rest of the batch.
        reportUncaught(err);
      }
    }
  };

  /**
   * `base`: where this batch's bytes start in `data` (data offsets are
   * relative to it). The endpoint's own state changes before any user
   * callback runs, and every callback is isolated (src/isolate.ts): a throw
   * hides neither the server-level event nor anything after it.
   */
  private dispatch(type: number, id: number, a: number, b: number, data: Buffer | undefined, base: number): void {
    switch (type) {
      case EV_SESSION: {
        const s = Session.fromRecord(this, id, data as Buffer, base + a, b);
        this.adopt(s);
        this.deliver1('session', s);
        return;
      }
      case EV_DATA: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined) return;
        s.readCount += b;
        // Bytes read before a close reached native code are discarded too.
        if (s.closing) return;
        const chunk = (data as Buffer).subarray(base + a, base + a + b);
        call1(s.ondata, s, chunk);
        this.deliver2('data', s, chunk);
        return;
      }
      case EV_DRAIN: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined) return;
        call0(s.ondrain, s);
        this.deliver1('drain', s);
        return;
      }
      case EV_END: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined || s.closing) return;
        call0(s.onend, s);
        this.deliver1('end', s);
        // Like net.Socket without allowHalfOpen: answer the peer's FIN with
        // ours once what the handlers queued has been sent (unless a handler
        // already closed or ended the session, or a SessionSocket, which
        // ends its side itself, owns it).
        if (!this.opts.allowHalfOpen && s.closeStep === CloseStep.Open && this.native !== null && s.socket === null) {
          s.closeStep = CloseStep.Ended;
          this.native.closeSession(id, CloseMode.End);
        }
        return;
      }
      case EV_CLOSE: {
        const slot = id & SLOT_MASK;
        const s = this.sessions[slot];
        if (s === undefined || s.id !== id) return;
        this.sessions[slot] = undefined;
        s.markClosed();
        this.liveSessions--;
        this.onSessionGone();
        const reason: CloseReason = CLOSE_REASONS[a] ?? 'error';
        const onclose = s.onclose;
        // Errors are built only for someone who will see them.
        if (onclose === null && this.listenerCount('sessionClose') === 0) return;
        const err = b !== 0 ? systemError(decodeErrorWord(b), 'io') : undefined;
        call2(onclose, s, reason, err);
        this.deliver3('sessionClose', s, reason, err);
        return;
      }
      case EV_TOTALS: {
        const s = this.sessions[id & SLOT_MASK];
        if (s !== undefined && s.id === id) s.writtenCount = a;
        return;
      }
      case EV_TIMEOUT: {
        const s = this.sessions[id & SLOT_MASK];
        if (s === undefined || s.id !== id || s.closing) return;
        call0(s.ontimeout, s);
        this.deliver1('timeout', s);
        return;
      }
      case EV_STALE:
        this.deliver2('staleCommand', id, STALE_COMMANDS[a]);
        return;
      case EV_CONNECTED:
        this.onConnected(id, a);
        return;
      case EV_CONNECT_FAILED:
        this.onConnectFailed(id, a, b);
        return;
      case EV_SERVER_CLOSED:
        if (++this.enginesClosed === this.opts.native.threads) this.finishClose();
        return;
      case EV_PROXY_REJECTED:
        this.onProxyRejected(data as Buffer, base + a);
        return;
      case EV_DRAINING:
        // Every engine's listener closed (threads: N report one each).
        if (++this.enginesDraining === this.opts.native.threads) this.deliver0('draining');
        return;
      default:
        return;
    }
  }
}

/** No more sends, no more 'data' or 'end': a close has been requested (server.close()). */
function markClosing(s: Session): void {
  if (s.closeStep < CloseStep.Closing) s.closeStep = CloseStep.Closing;
}

/** @internal The system error of a decoded error word (code System). */
export function systemError(e: RecordError, syscall: string, address?: string, port?: number): AcceptPoolSystemError {
  // The stack would only show the batch dispatcher; skipping it makes a
  // storm of resets cheap.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new AcceptPoolSystemError({ code: errorName(e.sys), errno: -e.raw, syscall, address, port });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** @internal */
export function checkId(id: unknown): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new InvalidArgumentError(`session id must be a non-negative integer, got ${describe(id)}`);
  }
}

/** @internal */
export function toBytes(data: SendData): Bytes {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data;
  throw new InvalidArgumentError(`data must be a Buffer, TypedArray, DataView, ArrayBuffer or string, got ${describe(data)}`);
}
