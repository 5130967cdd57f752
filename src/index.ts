/** acceptpool: fast raw TCP for Node with generation-checked session handles. */
import { Client } from './client';
import type { ConnectOptions } from './client';
import { Server } from './server';
import type { ClientOptions, ServerOptions } from './options';
import type { Session } from './session';

export { Server } from './server';
export type { AddressInfo, ListenTarget, ServerEvents, ServerStats } from './server';
export type { EndpointStats, StaleCommand, StatsCounters, ThreadStats } from './types';
export { Client } from './client';
export type { ClientStats, ConnectOptions } from './client';
export type { ListenerOf, SessionEvents } from './endpoint';
export type { EventName } from './isolate';
export { Session, CLOSE_REASONS } from './session';
export type { CloseReason, SendData, SessionCloseHandler } from './session';
export { SessionSocket } from './session-socket';
export type { ConnectionTarget, SessionSocketOptions } from './session-socket';
export type { BackendName, ClientOptions, CloseOptions, ServerOptions, Driver, ProxyProtocolOptions } from './options';
export { DEFAULT_DRIVER, backends, defaultBackend } from './options';
export {
  AcceptPoolError,
  AcceptPoolSystemError,
  ClientClosedError,
  InvalidArgumentError,
  InvalidStateError,
  ProxyHeaderError,
  ServerClosedError,
  UnsupportedError,
} from './errors';
export type { SystemErrorInfo } from './errors';
export { systemdListeners } from './systemd';
export type { SystemdListener } from './systemd';
export type { ProxyCommand, ProxyEndpoint, ProxyFamily, ProxyInfo, ProxyRejectReason, ProxyTlv, ProxyTransport } from './types';
export { LoadGenerator, runLoad } from './loadgen';
export type { LatencySummary, LoadMode, LoadOptions, LoadPhase, LoadProgress, LoadResult } from './loadgen';

/** A new, not yet listening, server. */
export function createServer(options?: ServerOptions): Server {
  return new Server(options);
}

/** A new client (connector): outgoing sessions with the server's events and id rules. */
export function createClient(options?: ClientOptions): Client {
  return new Client(options);
}

let sharedClient: Client | null = null;

/**
 * Opens one connection on a shared client, which keeps the process alive
 * only while it has sessions or connects in flight. Listen for the session's
 * data with `session.ondata` (or use createClient() for events).
 */
export function connect(port: number, host?: string, options?: ConnectOptions): Promise<Session> {
  if (sharedClient === null) sharedClient = Client.shared();
  return sharedClient.connect(port, host, options);
}
