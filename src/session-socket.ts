/**
 * A session as a `stream.Duplex` with the `net.Socket` surface that Node's
 * protocol stacks use, so node:http, https/tls, ws and the frameworks on top
 * of them run on acceptpool sessions: `session.toSocket()`, or
 * `server.handoff(httpServer)` for every session of a server.
 *
 * Flow control maps both ways onto the session:
 * - reading: every chunk is pushed into the readable side; when push()
 *   answers false (the consumer is behind or paused) the session is paused
 *   in the backend, and _read() (the consumer wants more) resumes it. The
 *   kernel's receive window then pushes back on the peer, so an unread
 *   upload stays in the kernel, not in this process.
 * - writing: each write goes to session.send() in slices no larger than the
 *   native queue can take above its highWaterMark; when send() answers
 *   "queued above highWaterMark", the write's callback waits for the
 *   session's 'drain', so the Writable's own buffering and 'drain' follow
 *   the native queue.
 *
 * Close semantics follow net.Socket: end() half-closes (FIN after what was
 * written), the peer's FIN ends the readable side (and, without
 * allowHalfOpen, ends the writable side once it has flushed), destroy()
 * closes gracefully (what send() accepted is still delivered, as bytes
 * handed to the kernel are by net.Socket; writes still buffered here are
 * dropped), resetAndDestroy() resets. A session reset by the peer destroys
 * the socket with the OS error ('error', then 'close' with hadError true).
 *
 * Sessions that are never converted pay nothing: the socket lives in the
 * session's side object of handlers, made on first use.
 */
import { Duplex } from 'node:stream';
import * as os from 'node:os';

import { AcceptPoolSystemError, InvalidArgumentError } from './errors';
import type { CloseReason } from './types';
import { describe } from './options';
import type { Session } from './session';

/** Options of Session.toSocket() and Server.handoff(). */
export interface SessionSocketOptions {
  /**
   * Keep the writable side open after the peer's FIN (default false: the
   * socket ends its side once what was written has gone, as net.Socket does).
   */
  allowHalfOpen?: boolean;
  /** Read nothing until resume() (net.Server's pauseOnConnect). Default false. */
  pauseOnCreate?: boolean;
}

// Send slices: large enough that a big write costs few native calls, small
// enough to sit above highWaterMark within maxQueuedBytes (see slice).
const MAX_SEND_SLICE = 64 * 1024;

/** An object that takes sockets the way net.Server does: a 'connection' event. */
export interface ConnectionTarget {
  /** 'connection' with each socket, and 'listening' (see Server.handoff()). */
  emit(event: string, ...args: unknown[]): boolean;
  /** A target that listens on its own already gets no 'listening' from handoff(). */
  listening?: boolean;
  /** net.Server's own options, honoured when present. */
  allowHalfOpen?: boolean;
  /** net.Server's pauseOnConnect: each socket starts paused (SessionSocketOptions.pauseOnCreate). */
  pauseOnConnect?: boolean;
}

const EPIPE = -(os.constants.errno.EPIPE ?? 32);

function pipeError(): AcceptPoolSystemError {
  return new AcceptPoolSystemError({ code: 'EPIPE', errno: EPIPE, syscall: 'write' });
}

type WriteCallback = (err?: Error | null) => void;

/**
 * A session as a net.Socket-like Duplex (Session.toSocket(), Server.handoff()),
 * for node:http, https/tls, ws and anything else that takes a socket.
 */
export class SessionSocket extends Duplex {
  /** The session underneath: its id works with every by-id call of its server or client. */
  readonly session: Session;
  // The largest single send(): queued above highWaterMark it still stays
  // within maxQueuedBytes, so a big write never closes with 'overflow'.
  private readonly slice: number;
  // The session is paused in the backend because push() said so (or pauseOnCreate).
  private readingPaused = false;
  // The write in progress: its bytes from `pendingOffset` on are not sent yet.
  private pendingChunk: Buffer | null = null;
  private pendingOffset = 0;
  private pendingCallback: WriteCallback | null = null;
  // The native queue is above highWaterMark: the next send waits for 'drain'.
  private sendBlocked = false;
  // Bytes send() took (sent or queued natively), as net counts dispatched bytes.
  private dispatched = 0;
  private eofPushed = false;
  // The session has been reported closed: nothing more to tell it.
  private gone = false;
  private timeoutMs: number | undefined = undefined;
  private refed = true;

  /** @internal Made by Session.toSocket() only. */
  constructor(session: Session, slice: number, options: SessionSocketOptions) {
    super({ allowHalfOpen: options.allowHalfOpen === true, emitClose: false, autoDestroy: true });
    this.session = session;
    this.slice = slice;
    if (options.pauseOnCreate === true) {
      // What net.Socket's pauseOnCreate does: no flowing until resume().
      this.pause();
      this.readingPaused = true;
      session.pause();
    }
  }

  /** @internal The largest send that queued above highWaterMark stays within maxQueuedBytes. */
  static sliceFor(highWaterMark: number, maxQueuedBytes: number): number {
    return Math.max(1, Math.min(MAX_SEND_SLICE, maxQueuedBytes - highWaterMark));
  }

  /** @internal Checks toSocket()'s options. */
  static checkOptions(options: unknown): SessionSocketOptions {
    if (options === undefined) return {};
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new InvalidArgumentError(`socket options must be an object, got ${describe(options)}`);
    }
    const o = options as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (key !== 'allowHalfOpen' && key !== 'pauseOnCreate')
        throw new InvalidArgumentError(`unknown socket option ${JSON.stringify(key)}`);
      if (o[key] !== undefined && typeof o[key] !== 'boolean') {
        throw new InvalidArgumentError(`socket option ${key} must be a boolean, got ${describe(o[key])}`);
      }
    }
    return o;
  }

  // ---------------------------------------------------------- session events

  /** @internal */
  onSessionData(chunk: Buffer): void {
    if (this.destroyed) return;
    if (!this.push(chunk) && !this.readingPaused && !this.gone) {
      this.readingPaused = true;
      this.session.pause();
    }
  }

  /** @internal */
  onSessionEnd(): void {
    this.pushEof();
  }

  /** @internal */
  onSessionDrain(): void {
    this.sendBlocked = false;
    if (this.pendingCallback !== null) this.sendPending();
  }

  /** @internal */
  onSessionTimeout(): void {
    if (!this.destroyed) this.emit('timeout');
  }

  /** @internal */
  onSessionClose(reason: CloseReason, err?: AcceptPoolSystemError): void {
    this.gone = true;
    if (!this.refed) this.session.adjustUnref(-1);
    const callback = this.pendingCallback;
    if (callback !== null) {
      this.clearPending();
      callback(err ?? pipeError());
    }
    if (this.destroyed) return;
    if (err !== undefined) {
      this.destroy(err);
    } else if (reason === 'remote' || reason === 'local') {
      // Both sides have shut down in order: what was read can still be
      // read, and the socket ends as net.Socket's does once it is.
      this.pushEof();
    } else {
      // Closed under the socket: server shutdown, idleTimeout, overflow.
      this.destroy();
    }
  }

  private pushEof(): void {
    if (this.eofPushed || this.destroyed) return;
    this.eofPushed = true;
    this.push(null);
    // As net.Socket does: lets 'end' come even when nobody reads.
    this.read(0);
  }

  // ---------------------------------------------------------- Duplex

  /** @internal Duplex's hook, called by the stream machinery. */
  override _read(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (!this.gone) this.session.resume();
  }

  /** @internal Duplex's hook, called by the stream machinery. */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    if (this.gone || !this.session.isOpen()) {
      callback(pipeError());
      return;
    }
    this.pendingChunk = chunk;
    this.pendingOffset = 0;
    this.pendingCallback = callback;
    if (!this.sendBlocked) this.sendPending();
  }

  /** @internal Duplex's hook, called by the stream machinery. */
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: WriteCallback): void {
    // One send (one write to the socket) for what cork() gathered, such as
    // an HTTP response's head and body.
    const buffers = new Array<Buffer>(chunks.length);
    for (let i = 0; i < chunks.length; i++) buffers[i] = chunks[i].chunk;
    this._write(Buffer.concat(buffers), 'utf8', callback);
  }

  /** @internal Duplex's hook, called by the stream machinery. */
  override _final(callback: WriteCallback): void {
    if (!this.gone) this.session.end();
    callback();
  }

  /** @internal Duplex's hook, called by the stream machinery. */
  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    const pending = this.pendingCallback;
    this.clearPending();
    // Graceful: what send() took is still delivered.
    if (!this.gone) this.session.close();
    if (pending !== null) pending(err ?? pipeError());
    callback(err);
    process.nextTick(emitClose, this, err !== null && err !== undefined);
  }

  private sendPending(): void {
    const chunk = this.pendingChunk as Buffer;
    let offset = this.pendingOffset;
    while (offset < chunk.length) {
      const end = Math.min(chunk.length, offset + this.slice);
      const part = offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end);
      const sent = this.session.send(part);
      if (!sent && !this.session.isOpen()) {
        const callback = this.pendingCallback as WriteCallback;
        this.clearPending();
        callback(pipeError());
        return;
      }
      this.dispatched += part.length;
      offset = end;
      if (!sent) {
        // Queued above highWaterMark: the rest, or the next write, waits for
        // 'drain'. A write whose last slice is queued is done now, as one
        // whose send() returned true: its callback must not wait for a
        // 'drain' that may reach JS in the same batch as the peer's next
        // request (node:http would see its socket still needing a drain
        // and pause a parser that TLS keeps feeding: HPE_PAUSED).
        this.sendBlocked = true;
        if (offset < chunk.length) {
          this.pendingOffset = offset;
          return;
        }
        break;
      }
    }
    const callback = this.pendingCallback as WriteCallback;
    this.clearPending();
    callback();
  }

  private clearPending(): void {
    this.pendingChunk = null;
    this.pendingCallback = null;
    this.pendingOffset = 0;
  }

  // ---------------------------------------------------------- net.Socket surface

  /** The session's remoteAddress. */
  get remoteAddress(): string {
    return this.session.remoteAddress;
  }

  /** The session's remotePort. */
  get remotePort(): number {
    return this.session.remotePort;
  }

  /** The session's remoteFamily. */
  get remoteFamily(): 'IPv4' | 'IPv6' | 'unix' {
    return this.session.remoteFamily;
  }

  /** The local address (undefined when unknown, as net.Socket has it). */
  get localAddress(): string | undefined {
    return this.session.localAddress ?? undefined;
  }

  /** The local port (undefined when unknown). */
  get localPort(): number | undefined {
    return this.session.localPort ?? undefined;
  }

  /** The local address's family (undefined when unknown). */
  get localFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.session.localFamily ?? undefined;
  }

  /** The local end, as net.Socket's address() gives it ({} when unknown). */
  address():
    | {
        /** The local IP address. */
        address: string;
        /** Its family. */
        family: 'IPv4' | 'IPv6';
        /** The local port. */
        port: number;
      }
    | Record<string, never> {
    const s = this.session;
    if (s.localAddress === null || s.localFamily === null || s.localPort === null) return {};
    return { address: s.localAddress, family: s.localFamily, port: s.localPort };
  }

  /** Bytes received on this socket. */
  get bytesRead(): number {
    return this.session.bytesRead;
  }

  /** Bytes written: taken by the session plus those still buffered here (as net.Socket counts). */
  get bytesWritten(): number {
    return this.dispatched + this.writableLength - (this.pendingChunk === null ? 0 : this.pendingOffset);
  }

  /** Deprecated in net.Socket as well: writableLength. */
  get bufferSize(): number {
    return this.writableLength;
  }

  /** A session is connected before it becomes a socket. */
  get connecting(): boolean {
    return false;
  }

  /** As net.Socket: true once there is no connection underneath. */
  get pending(): boolean {
    return this.destroyed;
  }

  /** As net.Socket's: which sides are still open. */
  get readyState(): 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The idle timeout set with setTimeout(), if any. */
  get timeout(): number | undefined {
    return this.timeoutMs;
  }

  /** TCP_NODELAY; any value counts by its truthiness, as in net.Socket. */
  setNoDelay(noDelay: boolean = true): this {
    if (!this.gone) this.session.setNoDelay(Boolean(noDelay));
    return this;
  }

  /** SO_KEEPALIVE, and the idle time before the first probe (ms), as net.Socket's. */
  setKeepAlive(enable: boolean = false, initialDelay = 0): this {
    if (!this.gone) this.session.setKeepAlive(Boolean(enable), initialDelay);
    return this;
  }

  /**
   * 'timeout' after `ms` without activity (0 turns it off), as net.Socket;
   * the socket stays open unless a listener closes it.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidArgumentError(`callback must be a function, got ${describe(callback)}`);
    }
    if (!this.gone) this.session.setTimeout(ms);
    this.timeoutMs = ms === 0 ? undefined : ms;
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    return this;
  }

  /** Ends the writable side, then destroys the socket once it has finished (as net.Socket). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes at once with a reset (TCP RST), dropping anything queued. */
  resetAndDestroy(): this {
    if (!this.gone) this.session.destroy();
    this.destroy();
    return this;
  }

  /**
   * Like net.Socket's: an unref'd socket does not keep the process alive.
   * That decides something only for sessions of the shared client behind
   * the top-level connect(), which keeps the process alive while it has
   * ref'd sessions; a listening server, or a client from createClient(),
   * keeps it alive itself (as a listening net.Server does) until its own
   * unref().
   */
  ref(): this {
    if (!this.refed && !this.gone) {
      this.refed = true;
      this.session.adjustUnref(-1);
    }
    return this;
  }

  /** Lets the process exit while this socket is open (see ref()). */
  unref(): this {
    if (this.refed && !this.gone) {
      this.refed = false;
      this.session.adjustUnref(1);
    }
    return this;
  }
}

function emitClose(socket: SessionSocket, hadError: boolean): void {
  socket.emit('close', hadError);
}
