/**
 * The servers the CLI runs: acceptpool or node:net, in one of three modes:
 *   echo     every byte comes back
 *   discard  bytes are read and dropped
 *   close    every connection is closed as soon as it is accepted
 * Both sides behave the same, so a benchmark compares only the machinery.
 */
import * as net from 'node:net';

import { createServer } from '../index';
import type { Driver } from '../options';

export type ServeMode = 'echo' | 'discard' | 'close';
export type ServerImpl = 'acceptpool' | 'net';

export const SERVE_MODES: readonly ServeMode[] = ['echo', 'discard', 'close'];
export const DRIVERS: readonly Driver[] = ['inline', 'threaded'];

export interface ServerSetup {
  mode: ServeMode;
  host: string;
  port: number;
  backlog: number;
  /** acceptpool only; undefined = the library's default. */
  driver?: Driver;
}

export interface ServerCounts {
  /** Connections open now. */
  conns: number;
  /** Connections accepted since start. */
  accepted: number;
  bytesIn: number;
  bytesOut: number;
}

export interface RunningServer {
  impl: ServerImpl;
  address: string;
  port: number;
  /** 'epoll · threaded' or 'libuv' */
  engine: string;
  counts(): ServerCounts;
  close(): Promise<void>;
}

// The library's own maxConnections: what bounds the idle scenario is the
// descriptor limit (main.ts), not the pool.
const MAX_CONNECTIONS = 1 << 20;

async function startAcceptpool(setup: ServerSetup): Promise<RunningServer> {
  const server = createServer({
    backlog: setup.backlog,
    maxConnections: MAX_CONNECTIONS,
    ...(setup.driver !== undefined ? { driver: setup.driver } : {}),
  });
  if (setup.mode === 'echo') server.on('data', (s, chunk) => s.send(chunk));
  if (setup.mode === 'close') server.on('session', (s) => s.close());
  const address = await server.listen(setup.port, setup.host);
  const first = server.stats();
  return {
    impl: 'acceptpool',
    address: address.address,
    port: address.port,
    engine: `${first.backend} · ${first.driver}`,
    counts: () => {
      const s = server.stats();
      return { conns: s.inUse, accepted: s.accepts, bytesIn: s.bytesIn, bytesOut: s.bytesOut };
    },
    close: () => server.close(),
  };
}

async function startNet(setup: ServerSetup): Promise<RunningServer> {
  const counts: ServerCounts = { conns: 0, accepted: 0, bytesIn: 0, bytesOut: 0 };
  const server = net.createServer({ noDelay: true }, (socket) => {
    counts.conns++;
    counts.accepted++;
    // Load generators close with a reset: an ordinary close here.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      counts.conns--;
    });
    if (setup.mode === 'close') {
      socket.end();
      return;
    }
    socket.on('data', (chunk: Buffer) => {
      counts.bytesIn += chunk.length;
      if (setup.mode === 'echo') {
        counts.bytesOut += chunk.length;
        socket.write(chunk);
      }
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: setup.port, host: setup.host, backlog: setup.backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = bound !== null && typeof bound === 'object' ? bound.port : setup.port;
  return {
    impl: 'net',
    address: setup.host,
    port,
    engine: 'libuv',
    counts: () => ({ ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        // close() waits for open sockets; the caller stops clients first.
        server.close(() => resolve());
        setTimeout(resolve, 500).unref();
      }),
  };
}

/** Starts a server and resolves once it listens. */
export function startServer(impl: ServerImpl, setup: ServerSetup): Promise<RunningServer> {
  return impl === 'acceptpool' ? startAcceptpool(setup) : startNet(setup);
}
