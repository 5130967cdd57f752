/**
 * The servers the CLI runs, in one table (as better-sqlite3's benchmark
 * keeps its competitors in one Map): `acceptpool bench --servers` picks
 * from it, `acceptpool serve` and the bench's server processes start its
 * entries. Every server has the same modes (the C server all but http), so
 * a benchmark compares only the machinery:
 *   echo     every byte comes back
 *   discard  bytes are read and dropped
 *   close    every connection is closed as soon as it is accepted
 *   http     node:http's server with a hello-world handler: on acceptpool
 *            through server.handoff(), on node:net as node:http itself runs
 * Adding a server is adding an entry: a label, and how to launch it in a
 * process of its own that speaks the control protocol of ./children.
 * One more mode is acceptpool's own (node:net and C leave it out of their
 * `modes`), which the bench runs against acceptpool's servers only:
 *   proxy-echo  echo, behind a PROXY protocol header (proxyProtocol, loopback trusted)
 */
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

import { createServer } from '../index';
import { DEFAULT_DRIVER, kThreadListeners, resolveOptions } from '../options';
import type { BackendName, Driver, ServerOptions } from '../options';
import type { Launch } from './children';
import { prepareCServer } from './cserver';
import type { Unavailable } from './cserver';

export type ServeMode = 'echo' | 'discard' | 'close' | 'http' | 'proxy-echo';
export const SERVE_MODES: readonly ServeMode[] = ['echo', 'discard', 'close', 'http', 'proxy-echo'];
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

const HELLO = 'hello world\n';

/** The http mode's handler, the same on every server: a fixed 200 framed by Content-Length. */
function helloWorld(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HELLO.length });
  res.end(HELLO);
}

// The library's own maxConnections: what bounds the idle scenario is the
// descriptor limit (main.ts), not the pool.
const MAX_CONNECTIONS = 1 << 20;

/** An acceptpool server; `driver` undefined = the library's default; `more`: further options (threads). */
export async function startAcceptpool(setup: ServerSetup, driver?: Driver, more: ServerOptions = {}): Promise<RunningServer> {
  const proxy = setup.mode === 'proxy-echo';
  const server = createServer({
    backlog: setup.backlog,
    maxConnections: MAX_CONNECTIONS,
    ...(driver !== undefined ? { driver } : {}),
    ...more,
    ...(proxy ? { proxyProtocol: { trusted: PROXY_TRUSTED } } : {}),
  });
  if (setup.mode === 'echo' || proxy) server.on('data', (s, chunk) => s.send(chunk));
  if (setup.mode === 'close') server.on('session', (s) => s.close());
  if (setup.mode === 'http') server.handoff(http.createServer(helloWorld));
  const address = await server.listen(setup.port, setup.host);
  const first = server.stats();
  return {
    address: address.address,
    port: address.port,
    engine: `${first.backend} · ${first.driver}${first.perThread.length > 1 ? ` × ${first.perThread.length}` : ''}`,
    counts: () => {
      const s = server.stats();
      return { conns: s.inUse, accepted: s.accepts, bytesIn: s.bytesIn, bytesOut: s.bytesOut };
    },
    close: () => server.close(),
  };
}

async function startNet(setup: ServerSetup): Promise<RunningServer> {
  if (!serves('node', setup.mode)) throw new Error(`node:net has no mode ${setup.mode}`);
  const counts: ServerCounts = { conns: 0, accepted: 0, bytesIn: 0, bytesOut: 0 };
  const server = setup.mode === 'http' ? http.createServer(helloWorld) : net.createServer({ noDelay: true });
  server.on('connection', (socket: net.Socket) => {
    counts.conns++;
    counts.accepted++;
    // Load generators close with a reset: an ordinary close here.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      counts.conns--;
    });
    if (setup.mode === 'http') return;
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
    engine: setup.mode === 'http' ? 'libuv · node:http' : 'libuv',
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
  /** Runs in the calling process: for serve, and for server-child in the bench; `more`: further options (an acceptpool server's backend). */
  start?: (setup: ServerSetup, more?: ServerOptions) => Promise<RunningServer>;
  /**
   * How the bench runs it in a process of its own (see serverCommand), or
   * why it cannot run here.
   */
  prepare: () => Launch | Unavailable;
  /** The modes it has, when not all of SERVE_MODES. */
  modes?: readonly ServeMode[];
}

/** A server of this table run by server-child.js, in a fresh Node. */
function nodeChild(name: string): () => Launch {
  // --expose-gc: the idle-memory scenario collects before each reading.
  return () => ({ command: process.execPath, args: ['--expose-gc', path.join(__dirname, 'server-child.js'), name] });
}

/** The acceptpool servers: what `--backends` runs once per backend. */
export type AcceptpoolServerName = Driver | 'threaded2' | 'threaded2-shared';
/** A table entry, or an acceptpool server on a named backend (`threaded@io_uring`, see onBackend). */
export type ServerName = AcceptpoolServerName | 'node' | 'c' | `${AcceptpoolServerName}@${BackendName}`;

/** Two I/O threads need a kernel that shares a port between engines (README, "Scaling and deployment"). */
function twoThreads(name: ServerName): () => Launch | Unavailable {
  return () =>
    process.platform === 'linux' ? nodeChild(name)() : { unavailable: `two I/O threads need Linux (${process.platform} runs one)` };
}

export const SERVERS: ReadonlyMap<ServerName, ServerEntry> = new Map<ServerName, ServerEntry>([
  ['threaded', { label: 'acceptpool threaded', start: (s, more) => startAcceptpool(s, 'threaded', more), prepare: nodeChild('threaded') }],
  [
    'inline',
    {
      label: 'acceptpool inline',
      start: (s, more) => startAcceptpool(s, 'inline', more),
      prepare: () =>
        process.platform === 'win32'
          ? { unavailable: 'the inline driver needs a pollable descriptor, which IOCP has not' }
          : nodeChild('inline')(),
    },
  ],
  [
    'threaded2',
    {
      label: 'acceptpool threaded, 2 threads',
      start: (s, more) => startAcceptpool(s, 'threaded', { threads: 2, ...more }),
      prepare: twoThreads('threaded2'),
    },
  ],
  [
    // The other way two threads can share a port: one listener, EPOLLEXCLUSIVE.
    'threaded2-shared',
    {
      label: 'acceptpool threaded, 2 threads, 1 listener',
      start: (s, more) => startAcceptpool(s, 'threaded', { threads: 2, [kThreadListeners]: 'shared', ...more } as ServerOptions),
      prepare: twoThreads('threaded2-shared'),
    },
  ],
  ['node', { label: 'node:net', start: startNet, prepare: nodeChild('node'), modes: ['echo', 'discard', 'close', 'http'] }],
  ['c', { label: 'C epoll', prepare: prepareCServer, modes: ['echo', 'discard', 'close'] }],
]);

/** Every ratio is this server's figure against the baseline's. */
export const BASELINE: ServerName = 'node';
/** What `--servers` runs when not given: the library's default driver against the baseline. */
export const DEFAULT_SERVERS: readonly ServerName[] = [DEFAULT_DRIVER, BASELINE];

/** A server process's command line: its entry's launch, then `<mode> <backlog> <max-lifetime-seconds>`. */
export function serverCommand(launch: Launch, mode: ServeMode, backlog: number, lifetimeS: number): Launch {
  return { command: launch.command, args: [...launch.args, mode, String(backlog), String(lifetimeS)] };
}

/** Whether the server has `mode`. */
export function serves(name: ServerName, mode: ServeMode): boolean {
  return (serverEntry(name).modes ?? SERVE_MODES).includes(mode);
}

export function serverEntry(name: ServerName): ServerEntry {
  const at = name.indexOf('@');
  if (at >= 0) return onBackendEntry(name.slice(0, at) as AcceptpoolServerName, name.slice(at + 1) as BackendName);
  const entry = SERVERS.get(name);
  if (entry === undefined) throw new Error(`no server "${name}"`);
  return entry;
}

/** Whether `name` is one of acceptpool's servers (not node:net's or C's). */
export function isAcceptpool(name: ServerName): name is AcceptpoolServerName {
  return name !== 'node' && name !== 'c' && !name.includes('@');
}

/** `name` on `backend`: its own column of the bench (`acceptpool bench --backends`). */
export function onBackend(name: AcceptpoolServerName, backend: BackendName): ServerName {
  return `${name}@${backend}`;
}

/** The entry of an acceptpool server run on a named backend, in a process of its own like its base. */
function onBackendEntry(base: AcceptpoolServerName, backend: BackendName): ServerEntry {
  const entry = SERVERS.get(base);
  const start = entry?.start;
  if (entry === undefined || start === undefined) throw new Error(`no acceptpool server "${base}"`);
  return {
    label: `${entry.label} (${backend})`,
    start: (s, more) => start(s, { ...more, backend }),
    prepare: () => {
      const launch = entry.prepare();
      return 'unavailable' in launch ? launch : nodeChild(onBackend(base, backend))();
    },
  };
}
