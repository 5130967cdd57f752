/**
 * The servers the CLI runs, in one table (as better-sqlite3's benchmark
 * keeps its competitors in one Map): `acceptpool bench --servers` picks
 * from it, `acceptpool serve` and the bench's server processes start its
 * entries. Every server has the same three modes, so a benchmark compares
 * only the machinery:
 *   echo     every byte comes back
 *   discard  bytes are read and dropped
 *   close    every connection is closed as soon as it is accepted
 * Adding a server is adding an entry: a label, and how to launch it in a
 * process of its own that speaks the control protocol of ./children.
 * One more mode is acceptpool's own (ACCEPTPOOL_ONLY_MODES), which the bench
 * runs against acceptpool's servers only:
 *   proxy-echo  echo, behind a PROXY protocol header (proxyProtocol, loopback trusted)
 */
import * as net from 'node:net';
import * as path from 'node:path';

import { createServer } from '../index';
import { DEFAULT_DRIVER, resolveOptions } from '../options';
import type { Driver } from '../options';
import type { Launch } from './children';
import { prepareCServer } from './cserver';
import type { Unavailable } from './cserver';

export type ServeMode = 'echo' | 'discard' | 'close' | 'proxy-echo';
export const SERVE_MODES: readonly ServeMode[] = ['echo', 'discard', 'close', 'proxy-echo'];
export const ACCEPTPOOL_ONLY_MODES: readonly ServeMode[] = ['proxy-echo'];
/** The balancer proxy-echo trusts: the load generator on loopback. */
const PROXY_TRUSTED = ['127.0.0.0/8'];
export const DRIVERS: readonly Driver[] = ['inline', 'threaded'];
/** The listen backlog when none is given: the library's own default. */
export const DEFAULT_BACKLOG = resolveOptions({}, 'server').native.backlog;

export interface ServerSetup {
  mode: ServeMode;
  host: string;
  port: number;
  backlog: number;
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
  address: string;
  port: number;
  /** 'epoll · threaded', 'libuv', ... */
  engine: string;
  counts(): ServerCounts;
  close(): Promise<void>;
}

// The library's own maxConnections: what bounds the idle scenario is the
// descriptor limit (main.ts), not the pool.
const MAX_CONNECTIONS = 1 << 20;

/** An acceptpool server; `driver` undefined = the library's default. */
export async function startAcceptpool(setup: ServerSetup, driver?: Driver): Promise<RunningServer> {
  const proxy = setup.mode === 'proxy-echo';
  const server = createServer({
    backlog: setup.backlog,
    maxConnections: MAX_CONNECTIONS,
    ...(driver !== undefined ? { driver } : {}),
    ...(proxy ? { proxyProtocol: { trusted: PROXY_TRUSTED } } : {}),
  });
  if (setup.mode === 'echo' || proxy) server.on('data', (s, chunk) => s.send(chunk));
  if (setup.mode === 'close') server.on('session', (s) => s.close());
  const address = await server.listen(setup.port, setup.host);
  const first = server.stats();
  return {
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
  if (ACCEPTPOOL_ONLY_MODES.includes(setup.mode)) throw new Error(`node:net has no mode ${setup.mode}`);
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

export interface ServerEntry {
  /** Column heading in reports. */
  label: string;
  /** Runs in the calling process: for serve, and for server-child in the bench. */
  start?: (setup: ServerSetup) => Promise<RunningServer>;
  /**
   * How the bench runs it in a process of its own (see serverCommand), or
   * why it cannot run here.
   */
  prepare: () => Launch | Unavailable;
}

/** A server of this table run by server-child.js, in a fresh Node. */
function nodeChild(name: string): () => Launch {
  // --expose-gc: the idle-memory scenario collects before each reading.
  return () => ({ command: process.execPath, args: ['--expose-gc', path.join(__dirname, 'server-child.js'), name] });
}

export type ServerName = Driver | 'node' | 'c';

export const SERVERS: ReadonlyMap<ServerName, ServerEntry> = new Map<ServerName, ServerEntry>([
  [
    'threaded',
    { label: 'acceptpool threaded', start: (s) => startAcceptpool(s, 'threaded'), prepare: nodeChild('threaded') },
  ],
  [
    'inline',
    {
      label: 'acceptpool inline',
      start: (s) => startAcceptpool(s, 'inline'),
      prepare: () =>
        process.platform === 'win32' ? { unavailable: "the inline driver needs a pollable descriptor, which IOCP has not" } : nodeChild('inline')(),
    },
  ],
  ['node', { label: 'node:net', start: startNet, prepare: nodeChild('node') }],
  ['c', { label: 'C epoll', prepare: prepareCServer }],
]);

/** Every ratio is this server's figure against the baseline's. */
export const BASELINE: ServerName = 'node';
/** What `--servers` runs when not given: the library's default driver against the baseline. */
export const DEFAULT_SERVERS: readonly ServerName[] = [DEFAULT_DRIVER, BASELINE];

/** A server process's command line: its entry's launch, then `<mode> <backlog> <max-lifetime-seconds>`. */
export function serverCommand(launch: Launch, mode: ServeMode, backlog: number, lifetimeS: number): Launch {
  return { command: launch.command, args: [...launch.args, mode, String(backlog), String(lifetimeS)] };
}

export function serverEntry(name: ServerName): ServerEntry {
  const entry = SERVERS.get(name);
  if (entry === undefined) throw new Error(`no server "${name}"`);
  return entry;
}
