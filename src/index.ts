/** acceptpool: fast raw TCP for Node with generation-checked session handles. */
import { Server } from './server';
import type { ServerOptions } from './options';

export { Server } from './server';
export type { AddressInfo, ServerEvents, ServerStats } from './server';
export { Session, CLOSE_REASONS } from './session';
export type { CloseReason, SendData } from './session';
export type { ServerOptions, Driver } from './options';
export { DEFAULT_DRIVER } from './options';
export {
  AcceptPoolError,
  AcceptPoolSystemError,
  InvalidArgumentError,
  InvalidStateError,
  ServerClosedError,
} from './errors';

/** A new, not yet listening, server. */
export function createServer(options?: ServerOptions): Server {
  return new Server(options);
}
