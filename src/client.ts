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
import { checkInteger, describe, resolveConnectOptions, resolveOptions } from './options';
import type { ClientOptions, ConnectOptions, ResolvedConnectOptions } from './options';
import { Session } from './session';
import { Code, CloseMode, ConnectStep, decodeErrorWord } from './wire';

export type { ConnectOptions };

/** What client.stats() returns. */
export type ClientStats = EndpointStats;

interface PendingConnect {
  resolve: (s: Session) => void;
  reject: (err: Error) => void;
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
  local: ResolvedConnectOptions;
  timer: NodeJS.Timeout | null;
}

/**
 * Why a connect failed, from its error word (a kConnectFailed record, or
 * what native connect() returned): the same error on both drivers. An OS
 * failure is reported as node:net does: a failed bind names the local
 * address (and port, if one was asked for), anything else the remote
 * address tried.
 */
function connectError(word: number, address: string, port: number, local: ResolvedConnectOptions): AcceptPoolError {
  const e = decodeErrorWord(word);
  if (e.code === Code.PoolFull)
    return new AcceptPoolError('ERR_ACCEPTPOOL_POOL_FULL', `maxConnections reached connecting to ${address}:${port}`);
  if (e.code === Code.Closed) return new ClientClosedError();
  if (e.code !== Code.System)
    return new AcceptPoolError('ERR_ACCEPTPOOL_INTERNAL', `connect to ${address}:${port} could not start (code ${e.code})`);
  if (e.step !== ConnectStep.Bind) return systemError(e, 'connect', address, port);
  return systemError(e, 'bind', local.localAddress ?? address, local.localPort > 0 ? local.localPort : undefined);
}

/**
 * A connector (createClient()): outgoing connections opened in native code,
 * as sessions with the same events and id rules as a server's.
 */
export class Client extends Endpoint<SessionEvents> {
  private readonly pending = new Map<number, PendingConnect>();
  private nextToken = 1;
  // The shared client behind the top-level connect(): it keeps the process
  // alive only while it has sessions or connects in flight, like sockets do.
  private autoRef = false;

  constructor(options?: ClientOptions) {
    super(resolveOptions(options, 'client'));
  }

  /** @internal The shared client of the top-level connect(). */
  static shared(): Client {
    const client = new Client();
    client.autoRef = true;
    return client;
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
    const opts = resolveConnectOptions(options);
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
        throw new AcceptPoolSystemError({
          code: e.code ?? 'ENOTFOUND',
          errno: typeof e.errno === 'number' ? e.errno : 0,
          syscall: 'getaddrinfo',
          address: host,
        });
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

  /** @internal */
  protected override onClosing(): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(new ClientClosedError());
    }
  }

  /** @internal */
  protected override onConnected(id: number, token: number): void {
    const p = this.pending.get(token);
    if (p === undefined) {
      // Given up on (timeout) before it completed: close it quietly.
      this.native?.closeSession(id, CloseMode.Abort);
      return;
    }
    this.pending.delete(token);
    if (p.timer !== null) clearTimeout(p.timer);
    const s = Session.fromAddress(this, id, canonical(p.address, p.family), p.port, p.family);
    this.adopt(s);
    p.resolve(s);
    this.deliver1('session', s);
  }

  /** @internal */
  protected override onConnectFailed(_id: number, token: number, word: number): void {
    const p = this.pending.get(token);
    if (p === undefined) return;
    this.pending.delete(token);
    if (p.timer !== null) clearTimeout(p.timer);
    this.refIfBusy();
    p.reject(connectError(word, p.address, p.port, p.local));
  }

  /** @internal */
  protected override onSessionGone(): void {
    this.refIfBusy();
  }

  private checkOpen(): void {
    if (this.state === 'draining' || this.state === 'closing' || this.state === 'closed' || this.native === null)
      throw new ClientClosedError();
  }

  private refIfBusy(): void {
    if (this.autoRef && this.native !== null) this.native.setRef(this.pending.size > 0 || this.liveSessions > this.unrefSessions);
  }

  private attempt(address: string, family: 'IPv4' | 'IPv6', port: number, opts: ResolvedConnectOptions): Promise<Session> {
    const native = this.native;
    if (native === null) return Promise.reject(new ClientClosedError());
    const token = this.nextToken;
    this.nextToken = this.nextToken >= 0xffffffff ? 1 : this.nextToken + 1;
    const failed = native.connect(token, address, port, opts.localAddress, opts.localPort);
    if (failed !== 0) return Promise.reject(connectError(failed, address, port, opts));
    this.state = 'running';
    return new Promise<Session>((resolve, reject) => {
      const p: PendingConnect = { resolve, reject, address, port, family, local: opts, timer: null };
      if (opts.timeout > 0) {
        p.timer = setTimeout(() => {
          if (this.pending.get(token) !== p) return;
          this.pending.delete(token);
          this.native?.abortConnect(token);
          this.refIfBusy();
          reject(
            new AcceptPoolSystemError({
              code: 'ETIMEDOUT',
              errno: -(os.constants.errno.ETIMEDOUT ?? 110),
              syscall: 'connect',
              address,
              port,
            }),
          );
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
