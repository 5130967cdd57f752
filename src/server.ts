/** The listener: a native accept pool behind a small event API. */
import * as dns from 'node:dns';
import * as net from 'node:net';

import { Endpoint } from './endpoint';
import type { EndpointStats, SessionEvents } from './endpoint';
import { AcceptPoolSystemError, InvalidArgumentError, InvalidStateError, ServerClosedError } from './errors';
import type { ProxyHeaderError } from './errors';
import type { NativeErrorInfo, NativeListenResult } from './native';
import { checkInteger, describe, resolveOptions } from './options';
import type { ServerOptions } from './options';
import { proxyRejection } from './proxy';

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export type ServerStats = EndpointStats;

export interface ServerEvents extends SessionEvents {
  listening: [address: AddressInfo];
  /**
   * proxyProtocol: a connection was refused before it became a session
   * (untrusted peer, malformed, slow or missing header). Counted in stats()
   * whether or not anyone listens.
   */
  proxyError: [err: ProxyHeaderError];
}

export class Server extends Endpoint<ServerEvents> {
  private bound: AddressInfo | null = null;
  private listenPending = false;

  constructor(options?: ServerOptions) {
    super(resolveOptions(options, 'server'));
  }

  /** Binds and starts accepting. Resolves with the bound address (port 0 picks one). */
  async listen(port: number, host?: string): Promise<AddressInfo> {
    checkInteger('port', port, 0, 65535);
    if (host !== undefined && (typeof host !== 'string' || host.length === 0)) {
      throw new InvalidArgumentError(`host must be a non-empty string, got ${describe(host)}`);
    }
    if (this.state === 'draining' || this.state === 'closing' || this.state === 'closed') throw new ServerClosedError();
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

  /** The bound address; null before listen() has resolved and from close() on (as node:net). */
  address(): AddressInfo | null {
    return this.bound;
  }

  /** @internal */
  protected override onProxyRejected(data: Buffer, at: number): void {
    // The error is built only for someone who will see it.
    if (this.listenerCount('proxyError') > 0) this.deliver1('proxyError', proxyRejection(data, at));
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
