/**
 * Every error acceptpool throws or emits. Match on `code`, never on message.
 *
 * - `AcceptPoolError` subclasses carry `ERR_ACCEPTPOOL_*` codes for misuse.
 * - `AcceptPoolSystemError` carries the OS error's name (`EADDRINUSE`, ...)
 *   with `errno` and `syscall`, like Node's own system errors.
 */

import type { ProxyRejectReason } from './types';

/** The base of every acceptpool error: match on `code`. */
export class AcceptPoolError extends Error {
  /** `ERR_ACCEPTPOOL_*`, or for an AcceptPoolSystemError the OS error's name. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument of the wrong type or out of range. */
export class InvalidArgumentError extends AcceptPoolError {
  constructor(message: string) {
    super('ERR_ACCEPTPOOL_INVALID_ARG', message);
  }
}

/** The server (or client) was closed, so the call cannot proceed. */
export class ServerClosedError extends AcceptPoolError {
  constructor(message = 'the server is closed') {
    super('ERR_ACCEPTPOOL_SERVER_CLOSED', message);
  }
}

/** The client was closed, so the call cannot proceed. */
export class ClientClosedError extends AcceptPoolError {
  constructor(message = 'the client is closed') {
    super('ERR_ACCEPTPOOL_CLIENT_CLOSED', message);
  }
}

/** The call does not fit the object's state (e.g. listen() twice). */
export class InvalidStateError extends AcceptPoolError {
  constructor(message: string) {
    super('ERR_ACCEPTPOOL_INVALID_STATE', message);
  }
}

/** This platform cannot do what was asked (e.g. reusePort where the OS does not balance SO_REUSEPORT, a Unix socket listener on Windows). */
export class UnsupportedError extends AcceptPoolError {
  constructor(message: string) {
    super('ERR_ACCEPTPOOL_UNSUPPORTED', message);
  }
}

const PROXY_REASONS: Readonly<Record<ProxyRejectReason, string>> = {
  untrusted: 'its peer is not in proxyProtocol.trusted',
  malformed: 'malformed PROXY header',
  timeout: 'no complete PROXY header within proxyProtocol.timeout',
  aborted: 'the peer closed before its PROXY header was complete',
  busy: 'too many PROXY headers split across segments held at once',
};

/**
 * A connection that had to start with a PROXY protocol header (server
 * option proxyProtocol) was refused; emitted as the server's 'proxyError'.
 */
export class ProxyHeaderError extends AcceptPoolError {
  /** Why it was refused. */
  readonly reason: ProxyRejectReason;
  /** The connection's own peer (the balancer, or whoever connected). */
  readonly remoteAddress: string;
  /** The port of that peer. */
  readonly remotePort: number;

  constructor(reason: ProxyRejectReason, detail: string, remoteAddress: string, remotePort: number) {
    const why = reason === 'malformed' ? `${PROXY_REASONS.malformed}: ${detail}` : PROXY_REASONS[reason];
    super('ERR_ACCEPTPOOL_PROXY_HEADER', `connection from ${remoteAddress} port ${remotePort} refused: ${why}`);
    this.reason = reason;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }
}

/** What an AcceptPoolSystemError is made from (its fields, as the addon reports them). */
export interface SystemErrorInfo {
  /** The OS error's name (`ECONNREFUSED`, ...). */
  code: string;
  /** Its number, negative as in Node's system errors. */
  errno: number;
  /** The call that failed (`connect`, `bind`, ...). */
  syscall: string;
  /** The address the call was for, when it had one. */
  address?: string;
  /** The port the call was for, when it had one. */
  port?: number;
}

/** An operating-system failure, shaped like Node's system errors. */
export class AcceptPoolSystemError extends AcceptPoolError {
  /** The OS error's number (negative, as Node's system errors have it). */
  readonly errno: number;
  /** The call that failed. */
  readonly syscall: string;
  /** The address the call was for, when it had one. */
  readonly address?: string;
  /** The port the call was for, when it had one. */
  readonly port?: number;

  constructor(info: SystemErrorInfo) {
    const where = info.address !== undefined ? ` ${info.address}${info.port !== undefined ? `:${info.port}` : ''}` : '';
    super(info.code, `${info.syscall} ${info.code}${where}`);
    this.errno = info.errno;
    this.syscall = info.syscall;
    if (info.address !== undefined) this.address = info.address;
    if (info.port !== undefined) this.port = info.port;
  }
}
