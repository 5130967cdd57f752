/** The listener: a native accept pool behind a small event API. */
import * as dns from 'node:dns';
import * as net from 'node:net';

import { Endpoint } from './endpoint';
import type { EndpointStats, SessionEvents } from './endpoint';
import { AcceptPoolSystemError, InvalidArgumentError, InvalidStateError, ServerClosedError } from './errors';
import type { NativeErrorInfo, NativeListenResult } from './native';
import { checkInteger, describe, resolveOptions } from './options';
import type { ServerOptions } from './options';
import type { Session } from './session';
import type { ConnectionTarget, SessionSocketOptions } from './session-socket';

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export type ServerStats = EndpointStats;

export interface ServerEvents extends SessionEvents {
  listening: [address: AddressInfo];
}

export class Server extends Endpoint<ServerEvents> {
  private bound: AddressInfo | null = null;
  private listenPending = false;
  private handoffTarget: ConnectionTarget | null = null;

  constructor(options?: ServerOptions) {
    super(resolveOptions(options, 'server'));
  }

  /** Binds and starts accepting. Resolves with the bound address (port 0 picks one). */
  async listen(port: number, host?: string): Promise<AddressInfo> {
    checkInteger('port', port, 0, 65535);
    if (host !== undefined && (typeof host !== 'string' || host.length === 0)) {
      throw new InvalidArgumentError(`host must be a non-empty string, got ${describe(host)}`);
    }
    if (this.state === 'closing' || this.state === 'closed') throw new ServerClosedError();
    if (this.state === 'running' || this.listenPending) throw new InvalidStateError('the server is already listening');
    this.listenPending = true;
    try {
      const ip = await resolveHost(host);
      // close() may have run while the name was resolving.
      if (this.state !== 'idle' || this.native === null) throw new ServerClosedError();
      const result = this.native.listen(ip, port, this.opts.ipv6Only);
      if (isErrorInfo(result)) {
        throw new AcceptPoolSystemError({ ...result, address: ip, port });
      }
      this.bound = result;
      this.state = 'running';
      this.deliver1('listening', this.bound);
      return this.bound;
    } finally {
      this.listenPending = false;
    }
  }

  /**
   * Hands every new session to `target` as a SessionSocket
   * (session.toSocket()), emitted as `'connection'`: an http.Server,
   * https.Server, tls.Server, net.Server or anything with that event. The
   * target's allowHalfOpen and pauseOnConnect are honoured as net.Server
   * honours them. The target also gets `'listening'` when this server
   * listens (at once if it already does): node:http starts its
   * headersTimeout/requestTimeout checks and the bookkeeping behind
   * closeIdleConnections() on that event.
   *
   *     createServer().handoff(http.createServer(app)).listen(8080)
   */
  handoff(target: ConnectionTarget): this {
    if (target === null || typeof target !== 'object' || typeof target.emit !== 'function') {
      throw new InvalidArgumentError(`handoff target must have an emit() method (an http, https, tls or net server), got ${describe(target)}`);
    }
    if (this.handoffTarget !== null) throw new InvalidStateError('this server already hands its sessions off');
    this.handoffTarget = target;
    const options: SessionSocketOptions = { allowHalfOpen: target.allowHalfOpen === true, pauseOnCreate: target.pauseOnConnect === true };
    this.on('session', (s: Session) => {
      target.emit('connection', s.toSocket(options));
    });
    if (target.listening !== true) {
      const listening = (): boolean => target.emit('listening');
      if (this.listening) process.nextTick(listening);
      else this.once('listening', listening);
    }
    return this;
  }

  /** The bound address; null before listen() has resolved and from close() on (as node:net). */
  address(): AddressInfo | null {
    return this.bound;
  }

  /** @internal */
  protected override onClosing(): void {
    this.bound = null;
  }

  get listening(): boolean {
    return this.state === 'running';
  }
}

function isErrorInfo(v: NativeListenResult | NativeErrorInfo): v is NativeErrorInfo {
  return (v as NativeErrorInfo).code !== undefined;
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
