/**
 * One connection as JavaScript sees it: a small plain object, not an
 * EventEmitter. Its `id` (slot + generation) stays tied to this connection for
 * ever; once the connection has closed, every call through the id is refused
 * in native code, even after the slot serves a new client.
 */
import { formatIPv4, formatIPv6 } from './address';
import type { AcceptPoolSystemError } from './errors';
import { decodeProxy } from './proxy';
import type { CloseReason, ProxyInfo } from './types';
import { wire } from './wire';

export type { CloseReason };

/** Every close reason; index = the native CloseReason value. */
export const CLOSE_REASONS: readonly CloseReason[] = wire.closeReasons;

// Where a kSession record's address keeps its parts (native/core/address.h).
const { family: AT_FAMILY, port: AT_PORT, addr: AT_ADDR } = wire.address;

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
}

interface SessionHandlers {
  data: ((chunk: Buffer) => void) | null;
  drain: (() => void) | null;
  end: (() => void) | null;
  close: SessionCloseHandler | null;
}

/** A session's close: why, and for 'reset' and 'error' the OS error. */
export type SessionCloseHandler = (reason: CloseReason, err?: AcceptPoolSystemError) => void;

export class Session {
  /** slot + generation * 2^24; unique for the life of the server. */
  readonly id: number;
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

  /** Per-session handlers: optional, free when unset. */
  get ondata(): ((chunk: Buffer) => void) | null {
    return this.handlers === null ? null : this.handlers.data;
  }
  set ondata(fn: ((chunk: Buffer) => void) | null) {
    this.handlersForWrite().data = fn;
  }
  get ondrain(): (() => void) | null {
    return this.handlers === null ? null : this.handlers.drain;
  }
  set ondrain(fn: (() => void) | null) {
    this.handlersForWrite().drain = fn;
  }
  get onend(): (() => void) | null {
    return this.handlers === null ? null : this.handlers.end;
  }
  set onend(fn: (() => void) | null) {
    this.handlersForWrite().end = fn;
  }
  get onclose(): SessionCloseHandler | null {
    return this.handlers === null ? null : this.handlers.close;
  }
  set onclose(fn: SessionCloseHandler | null) {
    this.handlersForWrite().close = fn;
  }

  private handlersForWrite(): SessionHandlers {
    if (this.handlers === null) this.handlers = { data: null, drain: null, end: null, close: null };
    return this.handlers;
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

  /** Bytes accepted by send() and not yet written to the socket (0 once closed). */
  get bufferedAmount(): number {
    return this.closed ? 0 : Math.max(0, this.owner.bufferedAmountOf(this.id));
  }
}
