/** The listener: a native accept pool behind a small event API. */
import * as dns from 'node:dns';
import * as net from 'node:net';

import { Endpoint } from './endpoint';
import type { EndpointStats, SessionEvents } from './endpoint';
import { AcceptPoolSystemError, InvalidArgumentError, InvalidStateError, ServerClosedError, UnsupportedError } from './errors';
import type { ProxyHeaderError } from './errors';
import type { NativeErrorInfo, NativeListenResult, NativeServer } from './native';
import { checkInteger, describe, resolveOptions } from './options';
import type { ServerOptions } from './options';
import type { Session } from './session';
import type { ConnectionTarget, SessionSocketOptions } from './session-socket';
import { proxyRejection } from './proxy';

/** Where a server listens (listen(), address(), 'listening'). */
export interface AddressInfo {
  /** The IP address, or for a Unix domain socket its path ('' for an inherited one). */
  address: string;
  /** The address family ('unix' for a Unix domain socket). */
  family: 'IPv4' | 'IPv6' | 'unix';
  /** 0 for a Unix domain socket. */
  port: number;
}

/**
 * Where listen() listens: a TCP port (and host), a Unix domain socket path
 * (Linux), or a listening descriptor this process inherited (Linux: from a
 * parent, a supervisor, or systemd; see systemdListeners()), which the
 * server then owns and closes.
 */
export type ListenTarget =
  | {
      /** The TCP port (0: the OS picks one). */
      port: number;
      /** The host: an IP address or a name for dns.lookup (default: every address, dual-stack). */
      host?: string;
    }
  | {
      /** The Unix domain socket's path. */
      path: string;
    }
  | {
      /** The inherited listening descriptor. */
      fd: number;
    };

/** Bytes of a Unix socket path at most (sockaddr_un's sun_path, its NUL excluded). */
const MAX_UNIX_PATH = 107;

/** What server.stats() returns. */
export type ServerStats = EndpointStats;

/** The events of a Server: a session's, plus the listener's own. */
export interface ServerEvents extends SessionEvents {
  /** listen() has bound: the address it bound. */
  listening: [address: AddressInfo];
  /**
   * proxyProtocol: a connection was refused before it became a session
   * (untrusted peer, malformed, slow or missing header). Counted in stats()
   * whether or not anyone listens.
   */
  proxyError: [err: ProxyHeaderError];
}

/**
 * A listener: accepts connections into sessions in native code (a pool of
 * slots, generation-checked ids) and reports them as events (createServer()).
 */
export class Server extends Endpoint<ServerEvents> {
  private bound: AddressInfo | null = null;
  private listenPending = false;
  private handoffTarget: ConnectionTarget | null = null;

  constructor(options?: ServerOptions) {
    super(resolveOptions(options, 'server'));
  }

  /** Binds and starts accepting. Resolves with the bound address (port 0 picks one). */
  async listen(target: number | ListenTarget, host?: string): Promise<AddressInfo> {
    if (typeof target === 'number') return this.listenTcp(target, host);
    if (target === null || typeof target !== 'object' || Array.isArray(target)) {
      throw new InvalidArgumentError(`listen() takes a port or { port, host } / { path } / { fd }, got ${describe(target)}`);
    }
    const keys = Object.keys(target);
    const t = target as { port?: unknown; host?: unknown; path?: unknown; fd?: unknown };
    if (keys.every((k) => k === 'port' || k === 'host') && t.port !== undefined) {
      return this.listenTcp(t.port as number, t.host as string | undefined);
    }
    if (keys.length === 1 && keys[0] === 'path') {
      if (typeof t.path !== 'string' || t.path.length === 0 || t.path.includes('\0') || Buffer.byteLength(t.path) > MAX_UNIX_PATH) {
        throw new InvalidArgumentError(`listen({ path }) needs a Unix socket path of 1 to ${MAX_UNIX_PATH} bytes, got ${describe(t.path)}`);
      }
      const path = t.path;
      return this.listenOther('a Unix domain socket', (native) => native.listenPath(path), path);
    }
    if (keys.length === 1 && keys[0] === 'fd') {
      const fd = checkInteger('fd', t.fd, 0, 2 ** 31 - 1);
      return this.listenOther('an inherited descriptor', (native) => native.listenFd(fd), undefined);
    }
    throw new InvalidArgumentError(`listen() takes { port, host? }, { path } or { fd }, got keys ${JSON.stringify(keys)}`);
  }

  /** A Unix socket or an inherited listener: nothing to resolve first (listen() makes a throw a rejection). */
  private listenOther(
    what: string,
    listen: (native: NativeServer) => NativeListenResult | NativeErrorInfo,
    address: string | undefined,
  ): AddressInfo {
    if (process.platform === 'win32') throw new UnsupportedError(`listening on ${what} is not supported on Windows (IOCP backend)`);
    this.checkCanListen();
    if (this.native === null) throw new ServerClosedError();
    const result = listen(this.native);
    if (isErrorInfo(result)) throw new AcceptPoolSystemError({ ...result, address });
    return this.started(result);
  }

  private checkCanListen(): void {
    if (this.state === 'draining' || this.state === 'closing' || this.state === 'closed') throw new ServerClosedError();
    if (this.state === 'running' || this.listenPending) throw new InvalidStateError('the server is already listening');
  }

  private started(result: NativeListenResult): AddressInfo {
    this.bound = result;
    this.state = 'running';
    this.deliver1('listening', this.bound);
    return this.bound;
  }

  private async listenTcp(port: number, host?: string): Promise<AddressInfo> {
    checkInteger('port', port, 0, 65535);
    if (host !== undefined && (typeof host !== 'string' || host.length === 0)) {
      throw new InvalidArgumentError(`host must be a non-empty string, got ${describe(host)}`);
    }
    this.checkCanListen();
    this.listenPending = true;
    try {
      const ip = await resolveHost(host);
      // close() may have run while the name was resolving.
      if (this.state !== 'idle' || this.native === null) throw new ServerClosedError();
      const result = this.native.listen(ip, port, this.opts.ipv6Only);
      if (isErrorInfo(result)) {
        throw new AcceptPoolSystemError({ ...result, address: ip, port });
      }
      return this.started(result);
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
      throw new InvalidArgumentError(
        `handoff target must have an emit() method (an http, https, tls or net server), got ${describe(target)}`,
      );
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
  protected override onProxyRejected(data: Buffer, at: number): void {
    // The error is built only for someone who will see it.
    if (this.listenerCount('proxyError') > 0) this.deliver1('proxyError', proxyRejection(data, at));
  }

  /** @internal */
  protected override onClosing(): void {
    this.bound = null;
  }

  /** Whether the server is listening (from listen() until close() or a drain begins). */
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
    throw new AcceptPoolSystemError({
      code: e.code ?? 'ENOTFOUND',
      errno: typeof e.errno === 'number' ? e.errno : 0,
      syscall: 'getaddrinfo',
      address: host,
    });
  }
}
