/**
 * The connector: outgoing connections opened by native code on the same
 * backend as the server, with the same sessions, events and id rules.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import * as os from 'node:os';

import { Endpoint, systemError } from './endpoint';
import type { EndpointStats, SessionEvents } from './endpoint';
import { AcceptPoolError, AcceptPoolSystemError, ClientClosedError, InvalidArgumentError } from './errors';
import { checkInteger, describe, resolveOptions } from './options';
import type { ClientOptions } from './options';
import { Session } from './session';

export interface ConnectOptions {
  /** Numeric IP to bind before connecting (e.g. a 127.0.0.x to spread sources). */
  localAddress?: string;
  /** Local port to bind (default 0: any). */
  localPort?: number;
  /** Milliseconds before an attempt fails with ETIMEDOUT (default 0: the OS's own limit). */
  timeout?: number;
}

export type ClientStats = EndpointStats;

export interface Client {
  on<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  once<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  off<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  addListener<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  removeListener<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  emit<E extends keyof SessionEvents>(event: E, ...args: SessionEvents[E]): boolean;
}

interface PendingConnect {
  resolve: (s: Session) => void;
  reject: (err: Error) => void;
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
  local: CheckedConnectOptions;
  timer: NodeJS.Timeout | null;
}

// Library-level reasons a connect could not start (native Code values).
const CODE_CLOSED = 1;
const CODE_POOL_FULL = 3;
// kConnectFailed's word: SysError + raw * 2^8 + step * 2^40 (event_batch.h).
const RAW_SPAN = 2 ** 32;
const STEP_UNIT = 2 ** 40;
const STEP_BIND = 1;

/** A connect the library refused to start: the same error on both drivers. */
function libraryFailure(code: number, address: string, port: number): AcceptPoolError {
  if (code === CODE_POOL_FULL) return new AcceptPoolError('ERR_ACCEPTPOOL_POOL_FULL', `maxConnections reached connecting to ${address}:${port}`);
  if (code === CODE_CLOSED) return new ClientClosedError();
  return new AcceptPoolError('ERR_ACCEPTPOOL_INTERNAL', `connect to ${address}:${port} could not start (code ${code})`);
}

/**
 * Where an OS failure of a connect is reported, as node:net does: a failed
 * bind names the local address (and port, if one was asked for), anything
 * else the remote address tried.
 */
function failedAt(bind: boolean, address: string, port: number, local: CheckedConnectOptions): { syscall: string; address: string; port?: number } {
  if (!bind) return { syscall: 'connect', address, port };
  return { syscall: 'bind', address: local.localAddress ?? address, port: local.localPort > 0 ? local.localPort : undefined };
}

export class Client extends Endpoint {
  private readonly pending = new Map<number, PendingConnect>();
  private nextToken = 1;
  // The shared client behind the top-level connect(): it keeps the process
  // alive only while it has sessions or connects in flight, like sockets do.
  private readonly autoRef: boolean;

  constructor(options?: ClientOptions, autoRef = false) {
    super(resolveOptions(options, 'client'));
    this.autoRef = autoRef;
  }

  /**
   * Opens a connection. Host names are resolved with dns.lookup and every
   * address is tried in order; the last error is thrown if none connects.
   * Errors carry the OS code (ECONNREFUSED, ETIMEDOUT, EADDRNOTAVAIL, ...)
   * and the address tried.
   */
  async connect(port: number, host = 'localhost', options: ConnectOptions = {}): Promise<Session> {
    checkInteger('port', port, 1, 65535);
    if (typeof host !== 'string' || host.length === 0) {
      throw new InvalidArgumentError(`host must be a non-empty string, got ${describe(host)}`);
    }
    const opts = checkConnectOptions(options);
    this.checkOpen();
    let addresses: { address: string; family: number }[];
    const family = net.isIP(host);
    if (family !== 0) {
      addresses = [{ address: host, family }];
    } else {
      try {
        addresses = await dns.promises.lookup(host, { all: true });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new AcceptPoolSystemError({ code: e.code ?? 'ENOTFOUND', errno: typeof e.errno === 'number' ? e.errno : 0, syscall: 'getaddrinfo', address: host });
      }
    }
    if (opts.localFamily !== 0) {
      // A bound source decides the family: try only addresses it can reach.
      const usable = addresses.filter((a) => a.family === opts.localFamily);
      if (usable.length === 0) {
        throw new InvalidArgumentError(`localAddress ${opts.localAddress} cannot reach any address of ${host}`);
      }
      addresses = usable;
    }
    let last: Error | undefined;
    for (const a of addresses) {
      this.checkOpen();
      try {
        return await this.attempt(a.address, a.family === 6 ? 'IPv6' : 'IPv4', port, opts);
      } catch (err) {
        // Only the network's answers move on to the next address.
        if (!(err instanceof AcceptPoolSystemError)) throw err;
        last = err;
      }
    }
    throw last ?? new AcceptPoolSystemError({ code: 'ENOTFOUND', errno: 0, syscall: 'connect', address: host, port });
  }

  protected override onClosing(): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(new ClientClosedError());
    }
  }

  protected override onConnected(id: number, token: number): void {
    const p = this.pending.get(token);
    if (p === undefined) {
      // Given up on (timeout) before it completed: close it quietly.
      this.native?.closeSession(id, 1);
      return;
    }
    this.pending.delete(token);
    if (p.timer !== null) clearTimeout(p.timer);
    const s = Session.fromAddress(this, id, canonical(p.address, p.family), p.port, p.family);
    this.adopt(s);
    p.resolve(s);
    this.deliver1('session', s);
  }

  protected override onConnectFailed(_id: number, word: number, token: number): void {
    const p = this.pending.get(token);
    if (p === undefined) return;
    this.pending.delete(token);
    if (p.timer !== null) clearTimeout(p.timer);
    this.refIfBusy();
    const sys = word % 256;
    const raw = Math.floor(word / 256) % RAW_SPAN;
    if (sys === 0) {
      p.reject(libraryFailure(raw, p.address, p.port));
      return;
    }
    const at = failedAt(Math.floor(word / STEP_UNIT) === STEP_BIND, p.address, p.port, p.local);
    p.reject(systemError(sys, raw, at.syscall, at.address, at.port));
  }

  protected override onSessionGone(): void {
    this.refIfBusy();
  }

  private checkOpen(): void {
    if (this.state === 'closing' || this.state === 'closed' || this.native === null) throw new ClientClosedError();
  }

  private refIfBusy(): void {
    if (this.autoRef && this.native !== null) this.native.setRef(this.pending.size > 0 || this.liveSessions > 0);
  }

  private attempt(address: string, family: 'IPv4' | 'IPv6', port: number, opts: CheckedConnectOptions): Promise<Session> {
    const native = this.native;
    if (native === null) return Promise.reject(new ClientClosedError());
    const token = this.nextToken;
    this.nextToken = this.nextToken >= 0xffffffff ? 1 : this.nextToken + 1;
    const started = native.connect(token, address, port, opts.localAddress, opts.localPort);
    if (typeof started === 'number') return Promise.reject(libraryFailure(started, address, port));
    if (started !== true) {
      // Reported as the threaded driver reports it (a kConnectFailed record
      // knows bind from every other step).
      const at = failedAt(started.syscall === 'bind', address, port, opts);
      return Promise.reject(new AcceptPoolSystemError({ code: started.code, errno: started.errno, ...at }));
    }
    this.state = 'running';
    return new Promise<Session>((resolve, reject) => {
      const p: PendingConnect = { resolve, reject, address, port, family, local: opts, timer: null };
      if (opts.timeout > 0) {
        p.timer = setTimeout(() => {
          if (this.pending.get(token) !== p) return;
          this.pending.delete(token);
          this.native?.abortConnect(token);
          this.refIfBusy();
          reject(new AcceptPoolSystemError({ code: 'ETIMEDOUT', errno: -(os.constants.errno.ETIMEDOUT ?? 110), syscall: 'connect', address, port }));
        }, opts.timeout);
      }
      this.pending.set(token, p);
      this.refIfBusy();
    });
  }
}

/** The address as the server side would print it ('::1', not '0:0:0:0:0:0:0:1'). */
function canonical(address: string, family: 'IPv4' | 'IPv6'): string {
  return family === 'IPv6' ? new net.SocketAddress({ address, family: 'ipv6' }).address : address;
}

interface CheckedConnectOptions {
  localAddress: string | undefined;
  localPort: number;
  localFamily: number;
  timeout: number;
}

function checkConnectOptions(options: ConnectOptions): CheckedConnectOptions {
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
    if (localFamily === 0) throw new InvalidArgumentError(`localAddress must be a numeric IP address, got ${describe(options.localAddress)}`);
  }
  const localPort = options.localPort === undefined ? 0 : checkInteger('localPort', options.localPort, 0, 65535);
  if (localPort !== 0 && options.localAddress === undefined) {
    throw new InvalidArgumentError('localPort needs localAddress');
  }
  const timeout = options.timeout === undefined ? 0 : checkInteger('timeout', options.timeout, 0, 2 ** 31 - 1);
  return { localAddress: options.localAddress, localPort, localFamily, timeout };
}
