/**
 * One connection as JavaScript sees it: a small plain object, not an
 * EventEmitter. Its `id` (slot + generation) stays tied to this connection for
 * ever; once the connection has closed, every call through the id is refused
 * in native code, even after the slot serves a new client.
 */
import { formatIPv4, formatIPv6 } from './address';
import { InvalidArgumentError, InvalidStateError } from './errors';
import type { AcceptPoolSystemError } from './errors';
import { checkSessionArg, describe } from './options';
import type { NativeSessionInfo } from './native';
import { SessionSocket } from './session-socket';
import type { SessionSocketOptions } from './session-socket';
import { decodeProxy } from './proxy';
import type { CloseReason, ProxyInfo } from './types';
import { wire } from './wire';

export type { CloseReason };

/** Every close reason; index = the native CloseReason value. */
export const CLOSE_REASONS: readonly CloseReason[] = wire.closeReasons;

// Where a kSession record's address keeps its parts (native/core/address.h).
const { family: AT_FAMILY, port: AT_PORT, addr: AT_ADDR } = wire.address;

/** What send() takes: bytes, or a string sent as UTF-8. */
export type SendData = ArrayBufferView | ArrayBuffer | string;

/**
 * @internal How far a local close of a session has gone. Each of end(),
 * close() and destroy() moves it forward only: end() < close() < destroy().
 */
export const enum CloseStep {
  Open = 0,
  Ended = 1,
  Closing = 2,
  Destroyed = 3,
}

/** @internal What a Session needs from its server or client. */
export interface SessionOwner {
  send(id: number, data: SendData): boolean;
  closeSession(id: number): boolean;
  /** @internal */ abortSession(id: number): boolean;
  /** @internal */ endSession(id: number): boolean;
  /** @internal */ bufferedAmountOf(id: number): number;
  pauseSession(id: number): boolean;
  resumeSession(id: number): boolean;
  setSessionTimeout(id: number, ms: number): boolean;
  setSessionNoDelay(id: number, on: boolean): boolean;
  setSessionKeepAlive(id: number, on: boolean, initialDelayMs: number): boolean;
  /** @internal */ querySession(id: number, withAddress?: boolean, withOptions?: boolean): NativeSessionInfo | null;
  /** @internal */ threadOf(id: number): number;
  /** @internal The largest single send a SessionSocket makes (see SessionSocket). */
  readonly socketSlice: number;
  /** @internal A SessionSocket's ref() (-1) or unref() (+1). */
  adjustUnrefSessions(delta: number): void;
}

interface SessionHandlers {
  data: ((chunk: Buffer) => void) | null;
  drain: (() => void) | null;
  end: (() => void) | null;
  close: SessionCloseHandler | null;
  timeout: (() => void) | null;
  /** toSocket()'s socket, which then owns the handlers above. */
  socket: SessionSocket | null;
}

/** A session's close: why, and for 'reset' and 'error' the OS error. */
export type SessionCloseHandler = (reason: CloseReason, err?: AcceptPoolSystemError) => void;

/**
 * One connection, accepted by a server or opened by a client. Calls on a
 * closed session are refused (false), never delivered to the connection
 * that took its slot next.
 */
export class Session {
  /** slot + generation * 2^24; unique for the life of the server. */
  readonly id: number;
  /** The peer's port (the PROXY header's client port with proxyProtocol). */
  readonly remotePort: number;
  /** 'unix' for a session on a Unix domain socket listener (remoteAddress '', remotePort 0). */
  readonly remoteFamily: 'IPv4' | 'IPv6' | 'unix';
  /**
   * What the connection's PROXY protocol header said (server option
   * proxyProtocol), or null without one. With a header naming an IPv4/IPv6
   * client, remoteAddress/remotePort/remoteFamily are that client's.
   */
  readonly proxy: ProxyInfo | null;
  /** @internal See CloseStep. */
  closeStep = CloseStep.Open;
  /** @internal Native code refused a send (stale there, overflow, a failed write): the session is going. */
  sendRefused = false;
  /** @internal pause() was called and resume() not since. */
  paused = false;
  /** The user's own per-session context (as Bun's socket.data); acceptpool never reads it. */
  data: unknown = undefined;
  /** @internal Bytes delivered as 'data' (counted by the endpoint). */
  readCount = 0;
  /** @internal The last bytesWritten native code reported (kept after the close). */
  writtenCount = 0;
  // The local address, once asked for (it does not change).
  private local: NativeSessionInfo | null = null;

  private readonly owner: SessionOwner;
  private wasClosed = false;
  // Per-session handlers live in a side object made on first use, so a
  // session without them carries one empty field, not four.
  private handlers: SessionHandlers | null = null;
  // IPv4 peers keep a number; the string is made on first use.
  private readonly addr4: number;
  private addrText: string | null;

  // Made by the endpoint only, through fromRecord() and fromAddress().
  private constructor(
    owner: SessionOwner,
    id: number,
    family: 'IPv4' | 'IPv6' | 'unix',
    port: number,
    addr4: number,
    addrText: string | null,
    proxy: ProxyInfo | null,
  ) {
    this.owner = owner;
    this.id = id;
    this.remoteFamily = family;
    this.remotePort = port;
    this.addr4 = addr4;
    this.addrText = addrText;
    this.proxy = proxy;
  }

  /**
   * @internal From a session record (accepted sessions): its 24 address
   * bytes, then for a proxied session what its header said (`length` in all).
   */
  static fromRecord(owner: SessionOwner, id: number, bytes: Buffer, offset: number, length: number): Session {
    const port = bytes.readUInt16LE(offset + AT_PORT);
    const proxy = decodeProxy(bytes, offset, length);
    // The family is the IP version, 4 or 6, as net.isIP() numbers it, or
    // 0 for a Unix socket's peer.
    const family = bytes[offset + AT_FAMILY];
    if (family === 0) return new Session(owner, id, 'unix', 0, 0, '', proxy);
    if (family === 6) return new Session(owner, id, 'IPv6', port, 0, formatIPv6(bytes, offset + AT_ADDR), proxy);
    return new Session(owner, id, 'IPv4', port, bytes.readUInt32BE(offset + AT_ADDR), null, proxy);
  }

  /** @internal From the address a client connected to. */
  static fromAddress(owner: SessionOwner, id: number, address: string, port: number, family: 'IPv4' | 'IPv6'): Session {
    return new Session(owner, id, family, port, 0, address, null);
  }

  /**
   * The I/O thread that serves this session: an index into
   * stats().perThread (0 with one thread or the inline driver).
   */
  get thread(): number {
    return this.owner.threadOf(this.id);
  }

  /**
   * Per-session handlers, called beside the endpoint's events: optional,
   * free when unset. This one gets the session's 'data'.
   */
  get ondata(): ((chunk: Buffer) => void) | null {
    return this.handlers === null ? null : this.handlers.data;
  }
  /** Sets the 'data' handler (null removes it). */
  set ondata(fn: ((chunk: Buffer) => void) | null) {
    this.handlersForWrite().data = fn;
  }
  /** The session's 'drain' handler. */
  get ondrain(): (() => void) | null {
    return this.handlers === null ? null : this.handlers.drain;
  }
  /** Sets the 'drain' handler (null removes it). */
  set ondrain(fn: (() => void) | null) {
    this.handlersForWrite().drain = fn;
  }
  /** The session's 'end' handler (the peer half-closed). */
  get onend(): (() => void) | null {
    return this.handlers === null ? null : this.handlers.end;
  }
  /** Sets the 'end' handler (null removes it). */
  set onend(fn: (() => void) | null) {
    this.handlersForWrite().end = fn;
  }
  /** The session's close handler ('sessionClose'). */
  get onclose(): SessionCloseHandler | null {
    return this.handlers === null ? null : this.handlers.close;
  }
  /** Sets the close handler (null removes it). */
  set onclose(fn: SessionCloseHandler | null) {
    this.handlersForWrite().close = fn;
  }

  /** Called when the session's own timeout (setTimeout) passes. */
  get ontimeout(): (() => void) | null {
    return this.handlers === null ? null : this.handlers.timeout;
  }
  /** Sets the timeout handler (null removes it). */
  set ontimeout(fn: (() => void) | null) {
    this.handlersForWrite().timeout = fn;
  }

  private handlersForWrite(): SessionHandlers {
    if (this.handlers === null) this.handlers = { data: null, drain: null, end: null, close: null, timeout: null, socket: null };
    return this.handlers;
  }

  /**
   * This session as a net.Socket-like stream.Duplex (see SessionSocket),
   * for node:http, https/tls, ws and anything else that takes a socket.
   * Made on the first call (later calls return it, their options unused);
   * from then on the socket owns this session's on* handlers.
   */
  toSocket(options?: SessionSocketOptions): SessionSocket {
    const existing = this.handlers === null ? null : this.handlers.socket;
    if (existing !== null) return existing;
    const checked = SessionSocket.checkOptions(options);
    if (this.wasClosed) throw new InvalidStateError(`session ${this.id} is closed`);
    const h = this.handlersForWrite();
    const socket = new SessionSocket(this, this.owner.socketSlice, checked);
    h.socket = socket;
    h.data = socketData;
    h.drain = socketDrain;
    h.end = socketEnd;
    h.close = socketClose;
    h.timeout = socketTimeout;
    return socket;
  }

  /** @internal toSocket()'s socket, if it was made. */
  get socket(): SessionSocket | null {
    return this.handlers === null ? null : this.handlers.socket;
  }

  /** @internal See SessionOwner.adjustUnrefSessions. */
  adjustUnref(delta: number): void {
    this.owner.adjustUnrefSessions(delta);
  }

  /** True once 'sessionClose' has been emitted for this session. */
  get closed(): boolean {
    return this.wasClosed;
  }

  /** @internal Its close is being reported. */
  markClosed(): void {
    this.wasClosed = true;
  }

  /** True once close(), destroy() or end() was called, or server.close(): sends are refused. */
  get ending(): boolean {
    return this.closeStep !== CloseStep.Open;
  }

  /** @internal A close was requested (not just end()): incoming bytes are discarded, no 'data' or 'end'. */
  get closing(): boolean {
    return this.closeStep >= CloseStep.Closing;
  }

  /** The peer's address ('' for a Unix socket peer; with proxyProtocol, the client the header named). */
  get remoteAddress(): string {
    if (this.addrText === null) this.addrText = formatIPv4(this.addr4);
    return this.addrText;
  }

  /** Sends (or queues) bytes. False when the session is gone or the queue is above highWaterMark. */
  send(data: SendData): boolean {
    return this.owner.send(this.id, data);
  }

  // close(), destroy() and end() return true when the call changed how the
  // session ends, false when it was already ending that way or further
  // (end() < close() < destroy()) or is gone. So a second close() is false,
  // and destroy() after close() is true: it resets a session still flushing.

  /**
   * Graceful close (reason 'local'): flushes what is queued, sends FIN, then
   * reads and discards what the peer still sends until its FIN (or the
   * closeLinger deadline), and closes. No 'data' or 'end' after this call.
   */
  close(): boolean {
    return this.owner.closeSession(this.id);
  }

  /** Closes at once with a reset, dropping anything queued (also after close()). */
  destroy(): boolean {
    return this.owner.abortSession(this.id);
  }

  /**
   * Half-close: flush, then send FIN; receiving goes on until the peer ends,
   * which gives 'end' and then the close (reason 'local': we ended first).
   */
  end(): boolean {
    return this.owner.endSession(this.id);
  }

  /**
   * Stops reading this session in native code: nothing more is read from its
   * socket, so the kernel's receive buffer fills and TCP makes the peer wait.
   * What was already read keeps arriving as 'data' (bounded: at most one
   * batch's share, 64 KiB, inline; four batches' shares, 256 KiB, threaded).
   * Closing ignores a pause: a closing session reads and discards.
   */
  pause(): void {
    if (!this.closed) this.owner.pauseSession(this.id);
  }

  /** Reads again after pause(). */
  resume(): void {
    if (!this.closed) this.owner.resumeSession(this.id);
  }

  /** Whether pause() was called and resume() not since. */
  isPaused(): boolean {
    return this.paused;
  }

  /**
   * Like net.Socket's: after `ms` milliseconds without a read or a write,
   * 'timeout' is emitted for this session (and `ontimeout` called), once,
   * until the next read or write or setTimeout() arms it again. It never
   * closes the session: do that in the handler if you want it. `0` disables.
   * A `callback` becomes `ontimeout`. Millisecond resolution, in native code.
   */
  setTimeout(ms: number, callback?: () => void): this {
    checkSessionArg('timeout', 'ms', ms);
    if (callback !== undefined) {
      if (typeof callback !== 'function') throw new InvalidArgumentError(`callback must be a function, got ${describe(callback)}`);
      this.ontimeout = callback;
    }
    if (!this.closed) this.owner.setSessionTimeout(this.id, ms);
    return this;
  }

  /** TCP_NODELAY on (default true, from options.noDelay) or off, as net.Socket's. */
  setNoDelay(on = true): this {
    if (typeof on !== 'boolean') throw new InvalidArgumentError(`noDelay must be a boolean, got ${describe(on)}`);
    if (!this.closed) this.owner.setSessionNoDelay(this.id, on);
    return this;
  }

  /**
   * SO_KEEPALIVE on or off, as net.Socket's; with `initialDelayMs` > 0 also the
   * idle time before the first probe (TCP_KEEPIDLE; whole seconds, rounded
   * up); 0 leaves that delay as it is.
   */
  setKeepAlive(on = false, initialDelayMs = 0): this {
    if (typeof on !== 'boolean') throw new InvalidArgumentError(`keepAlive must be a boolean, got ${describe(on)}`);
    checkSessionArg('keepAliveDelay', 'initialDelay', initialDelayMs);
    if (!this.closed) this.owner.setSessionKeepAlive(this.id, on, initialDelayMs);
    return this;
  }

  /** The local address of the connection (null once closed if never read while open). */
  get localAddress(): string | null {
    return this.localInfo()?.localAddress ?? null;
  }
  /** The local port of the connection (null as localAddress is). */
  get localPort(): number | null {
    return this.localInfo()?.localPort ?? null;
  }
  /** The local address's family (null as localAddress is). */
  get localFamily(): 'IPv4' | 'IPv6' | null {
    return this.localInfo()?.localFamily ?? null;
  }

  private localInfo(): NativeSessionInfo | null {
    if (this.local === null && !this.closed) {
      const info = this.owner.querySession(this.id, true);
      if (info !== null && info.localAddress !== undefined) this.local = info;
    }
    return this.local;
  }

  /** Bytes received (delivered as 'data'). */
  get bytesRead(): number {
    return this.readCount;
  }

  /**
   * Bytes the kernel has taken from this session's sends (not those still
   * queued: see writableLength). Exact also after the close once it has
   * been read while the session was open (its last count comes with the
   * close); the first read after the close gives the last count known.
   */
  get bytesWritten(): number {
    if (!this.closed) {
      const info = this.owner.querySession(this.id);
      if (info !== null) this.writtenCount = info.bytesWritten;
    }
    return this.writtenCount;
  }

  /**
   * Bytes accepted by send() and not yet written to the socket, as
   * writable.writableLength (0 once closed). With isOpen() it tells what a
   * send() that returned false meant: isOpen() true, the bytes are queued
   * above highWaterMark (wait for 'drain'); false, the session is gone or
   * ending and the bytes were dropped.
   */
  get writableLength(): number {
    return this.bufferedAmount;
  }

  /** True while send() can still queue bytes: not closed, not ending (end(), close(), destroy(), overflow, a failed write). */
  isOpen(): boolean {
    return !this.wasClosed && this.closeStep === CloseStep.Open && !this.sendRefused;
  }

  /** Bytes accepted by send() and not yet written to the socket (0 once closed). */
  get bufferedAmount(): number {
    return this.closed ? 0 : Math.max(0, this.owner.bufferedAmountOf(this.id));
  }
}

// A converted session's handlers: one function each for every socket, which
// they find through the session (`this`).
function socketData(this: Session, chunk: Buffer): void {
  (this.socket as SessionSocket).onSessionData(chunk);
}
function socketDrain(this: Session): void {
  (this.socket as SessionSocket).onSessionDrain();
}
function socketEnd(this: Session): void {
  (this.socket as SessionSocket).onSessionEnd();
}
function socketTimeout(this: Session): void {
  (this.socket as SessionSocket).onSessionTimeout();
}
function socketClose(this: Session, reason: CloseReason, err?: AcceptPoolSystemError): void {
  (this.socket as SessionSocket).onSessionClose(reason, err);
}
