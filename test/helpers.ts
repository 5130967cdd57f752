/**
 * Shared helpers for the mocha suite: servers on loopback, node:net peers,
 * bounded waits, and bookkeeping of sessions and close events.
 *
 * Every wait here is bounded in time; every server and socket made through
 * these helpers is closed by `cleanup()` (wired to a root afterEach hook).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { createServer } from '../src/index';
import { maxThreads } from '../src/options';
import type { CloseReason, Driver, Server, ServerOptions, Session } from '../src/index';

/** Windows (IOCP) has no descriptor for Node's loop to watch: threaded only. */
export const DRIVERS: readonly Driver[] = process.platform === 'win32' ? ['threaded'] : ['inline', 'threaded'];

/** Whether this platform runs several I/O threads per server (Linux, Windows) and this machine has the cores. */
export const MULTI_THREAD = (process.platform === 'linux' || process.platform === 'win32') && maxThreads() >= 2;

/** A way to run a server that the core tests cover: a driver and the options that go with it. */
export interface Setup {
  label: string;
  driver: Driver;
  options: ServerOptions;
}

/** Each driver, and where the platform runs several, the threaded driver with two I/O threads. */
export const SETUPS: readonly Setup[] = [
  ...DRIVERS.map((driver) => ({ label: `${driver} driver`, driver, options: {} })),
  ...(MULTI_THREAD ? [{ label: 'threaded driver, 2 threads', driver: 'threaded' as const, options: { threads: 2 } }] : []),
];
/**
 * The raw OS number behind an error name, as an error's errno carries it
 * negated: errno on POSIX, the WSA code on Windows.
 */
export function osErrno(name: 'ECONNRESET' | 'EADDRINUSE' | 'ECONNREFUSED' | 'EADDRNOTAVAIL'): number {
  const table = os.constants.errno as Record<string, number | undefined>;
  const n = process.platform === 'win32' ? table[`WSA${name}`] : table[name];
  assert.ok(n !== undefined, `no OS number for ${name}`);
  return n;
}

/**
 * The backend stats() names in this run: the one ACCEPTPOOL_BACKEND picks
 * (.ci/run runs the suite once per backend), or the platform's own.
 */
export const PLATFORM_BACKEND = process.env.ACCEPTPOOL_BACKEND || (process.platform === 'win32' ? 'iocp' : 'epoll');
export const HOST4 = '127.0.0.1';
export const HOST6 = '::1';
export const SLOT_MASK = 0xffffff;

/**
 * The most bytes the kernel may still take from a sender whose peer does not
 * read: the sender's largest send buffer plus the reader's receive buffer.
 * A backpressure test must queue more than this before it can expect bytes to
 * stay queued; until then the threaded driver's bufferedAmount may count bytes
 * still on their way to the I/O thread, which the kernel then takes.
 */
export function kernelBufferRoom(): number {
  const read = (file: string): number[] | null => {
    try {
      return fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    } catch {
      return null;
    }
  };
  const wmem = read('/proc/sys/net/ipv4/tcp_wmem');
  const rmem = read('/proc/sys/net/ipv4/tcp_rmem');
  // No /proc (Windows): send-buffer autotuning there stays within a few MiB.
  if (wmem === null || rmem === null) return 8 * 1024 * 1024;
  return wmem[2] + rmem[1];
}

// ------------------------------------------------------------------ time

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with a clear message when `p` has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `predicate` every few ms until it holds; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await delay(5);
  }
}

/** Blocks the JS thread (without spinning) so nothing JS-side runs meanwhile. */
export function blockJsThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The `code` property of a thrown value, if any. */
export function codeOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Asserts that `fn` throws an error whose code is `code`. */
export function assertThrowsCode(fn: () => unknown, code: string, what: string): Error {
  let thrown: unknown;
  let threw = false;
  try {
    fn();
  } catch (err) {
    threw = true;
    thrown = err;
  }
  assert.ok(threw, `${what}: expected a throw with code ${code}, but it returned`);
  assert.equal(codeOf(thrown), code, `${what}: wrong error ${String(thrown)}`);
  assert.ok(thrown instanceof Error, `${what}: thrown value is not an Error`);
  return thrown;
}

/** Asserts that `p` rejects with an error whose code is `code`; returns the error. */
export async function assertRejectsCode(p: Promise<unknown>, code: string, what: string): Promise<Error> {
  let rejected: unknown;
  let didReject = false;
  try {
    await withTimeout(p, 10_000, what);
  } catch (err) {
    didReject = true;
    rejected = err;
  }
  assert.ok(didReject, `${what}: expected a rejection with code ${code}, but it resolved`);
  assert.ok(rejected instanceof Error, `${what}: rejected with a non-Error ${String(rejected)}`);
  assert.equal(codeOf(rejected), code, `${what}: wrong error ${String(rejected)}`);
  return rejected;
}

export function randomBytes(n: number): Buffer {
  return crypto.randomBytes(n);
}

// ------------------------------------------------------------- resources

function ignore(): void {
  // deliberately empty
}

const liveSockets = new Set<net.Socket>();
const liveServers = new Set<Server>();

/** Destroys every socket and closes every server made through these helpers. */
export async function cleanup(): Promise<void> {
  for (const s of liveSockets) s.destroy();
  liveSockets.clear();
  const servers = [...liveServers];
  liveServers.clear();
  await Promise.all(servers.map((s) => withTimeout(s.close(), 10_000, 'server.close() in cleanup')));
}

/** Registers a server made elsewhere so that cleanup() closes it. */
export function track(server: Server): Server {
  liveServers.add(server);
  return server;
}

// ---------------------------------------------------------------- server

export interface CloseRecord {
  id: number;
  session: Session;
  reason: CloseReason;
  err: Error | undefined;
  at: number;
}

/** A listening server plus a log of what it reported. */
export interface Harness {
  server: Server;
  port: number;
  host: string;
  /** Every session in order of its 'session' event. */
  sessions: Session[];
  /** Open sessions by id. */
  open: Map<number, Session>;
  closes: CloseRecord[];
  closeById: Map<number, CloseRecord>;
  /** Most sessions open at once, as seen through events. */
  maxOpen: number;
  /** Bytes received per session id, in order. */
  received: Map<number, Buffer[]>;
  receivedBytes(id: number): Buffer;
  /**
   * The session whose peer uses local port `port`: the open one if any (a
   * closed session's port can come back for a new client, as it does under
   * Wine), else the latest.
   */
  byRemotePort(port: number): Session | undefined;
  /** Resolves once `n` sessions in total have appeared. */
  waitSessions(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `n` sessionClose events in total have been seen. */
  waitCloses(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves with the close record of `id`. */
  waitClose(id: number, timeoutMs?: number): Promise<CloseRecord>;
}

export interface StartOptions {
  host?: string;
  /** Port to listen on (default 0: any free one). */
  port?: number;
  /** Record incoming bytes per session (default true). */
  record?: boolean;
  /** Runs on the server before it listens. */
  beforeListen?: (server: Server) => void;
}

export async function startServer(driver: Driver, options: ServerOptions = {}, start: StartOptions = {}): Promise<Harness> {
  const host = start.host ?? HOST4;
  const server = track(createServer({ ...options, driver }));
  const sessions: Session[] = [];
  const open = new Map<number, Session>();
  const closes: CloseRecord[] = [];
  const closeById = new Map<number, CloseRecord>();
  const received = new Map<number, Buffer[]>();
  const h: Harness = {
    server,
    port: 0,
    host,
    sessions,
    open,
    closes,
    closeById,
    maxOpen: 0,
    received,
    receivedBytes: (id) => Buffer.concat(received.get(id) ?? []),
    byRemotePort: (port) => {
      const all = sessions.filter((s) => s.remotePort === port);
      return all.find((s) => !s.closed) ?? all[all.length - 1];
    },
    waitSessions: (n, timeoutMs = 10_000) => waitFor(() => sessions.length >= n, timeoutMs, `${n} sessions (have ${sessions.length})`),
    waitCloses: (n, timeoutMs = 10_000) => waitFor(() => closes.length >= n, timeoutMs, `${n} sessionClose events (have ${closes.length})`),
    waitClose: async (id, timeoutMs = 10_000) => {
      await waitFor(() => closeById.has(id), timeoutMs, `sessionClose of ${id}`);
      return closeById.get(id) as CloseRecord;
    },
  };
  server.on('session', (s) => {
    sessions.push(s);
    open.set(s.id, s);
    if (open.size > h.maxOpen) h.maxOpen = open.size;
  });
  if (start.record !== false) {
    server.on('data', (s, chunk) => {
      let list = received.get(s.id);
      if (list === undefined) received.set(s.id, (list = []));
      // The chunk is a view of a batch buffer: copy it.
      list.push(Buffer.from(chunk));
    });
  }
  server.on('sessionClose', (s, reason, err) => {
    open.delete(s.id);
    const rec: CloseRecord = { id: s.id, session: s, reason, err, at: Date.now() };
    closes.push(rec);
    closeById.set(s.id, rec);
  });
  start.beforeListen?.(server);
  const address = await withTimeout(server.listen(start.port ?? 0, host), 5_000, `listen on ${host}`);
  h.port = address.port;
  return h;
}

/** A server that echoes every chunk back to its session. */
export async function startEcho(driver: Driver, options: ServerOptions = {}, start: StartOptions = {}): Promise<Harness> {
  const h = await startServer(driver, options, { record: false, ...start });
  h.server.on('data', (s, chunk) => {
    s.send(chunk);
  });
  return h;
}

// ---------------------------------------------------------------- client

/** Connects a node:net client (bound first to `localAddress` if given); resolves once connected. */
export function connect(port: number, host: string = HOST4, timeoutMs = 5_000, localAddress?: string): Promise<net.Socket> {
  const socket = connectNoWait(port, host, localAddress);
  return withTimeout(
    new Promise<net.Socket>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(socket);
      });
    }),
    timeoutMs,
    `connect to ${host}:${port}`,
  );
}

/** Starts a connection without waiting for it (the socket is tracked for cleanup). */
export function connectNoWait(port: number, host: string = HOST4, localAddress?: string): net.Socket {
  const socket = net.connect({ port, host, localAddress });
  liveSockets.add(socket);
  socket.once('close', () => liveSockets.delete(socket));
  // Errors (resets by the server under test) are looked at through Reader;
  // never let one crash the runner.
  socket.on('error', ignore);
  return socket;
}

/** Connects `n` clients, at most `parallel` handshakes at a time. */
export async function connectMany(port: number, n: number, host: string = HOST4, parallel = 200): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  for (let i = 0; i < n; i += parallel) {
    const wave: Promise<net.Socket>[] = [];
    for (let j = i; j < Math.min(n, i + parallel); j++) wave.push(connect(port, host, 10_000));
    out.push(...(await Promise.all(wave)));
  }
  return out;
}

/** Everything a client socket received, and how it ended. */
export class Reader {
  readonly chunks: Buffer[] = [];
  length = 0;
  ended = false;
  closed = false;
  error: Error | undefined;
  /** Bytes received when 'end' arrived. */
  lengthAtEnd = -1;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
    });
    socket.on('end', () => {
      this.ended = true;
      this.lengthAtEnd = this.length;
    });
    socket.on('error', (err: Error) => {
      this.error = err;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  /** The first `n` bytes, once they have arrived. */
  async readExactly(n: number, timeoutMs = 10_000): Promise<Buffer> {
    await waitFor(() => this.length >= n || this.closed, timeoutMs, `${n} bytes (have ${this.length})`);
    assert.ok(this.length >= n, `connection closed after ${this.length} of ${n} bytes`);
    return this.bytes().subarray(0, n);
  }

  waitEnd(timeoutMs = 10_000): Promise<void> {
    return waitFor(() => this.ended, timeoutMs, 'end from the server');
  }

  waitClose(timeoutMs = 10_000): Promise<void> {
    return waitFor(() => this.closed, timeoutMs, 'client socket close');
  }
}

export function reader(socket: net.Socket): Reader {
  return new Reader(socket);
}

/** Reads exactly `n` bytes from a socket not yet read from. */
export function readExactly(socket: net.Socket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Reader(socket).readExactly(n, timeoutMs);
}

// ----------------------------------------------------------- child process

/** A fixture script (compiled to dist/test/fixtures/) run as a child with IPC. */
export class ChildServer {
  private readonly messages: unknown[] = [];
  exited = false;
  exitCode: number | null = null;
  stderr = '';

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: unknown) => this.messages.push(m));
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    proc.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
    });
  }

  /** Every message of `type` received so far (they stay queued). */
  all<T extends { type: string }>(type: T['type']): T[] {
    return this.messages.filter((m): m is T => isMessage(m, type));
  }

  /** Takes the next message of `type`, waiting for it. */
  async next<T extends { type: string }>(type: T['type'], timeoutMs = 5_000): Promise<T> {
    await waitFor(() => this.messages.some((m) => isMessage(m, type)) || this.exited, timeoutMs, `child message ${type}`);
    const i = this.messages.findIndex((m) => isMessage(m, type));
    assert.ok(i >= 0, `the child exited (code ${String(this.exitCode)}) before sending ${type}: ${this.stderr}`);
    return this.messages.splice(i, 1)[0] as T;
  }

  send(msg: { type: string; [key: string]: unknown }): void {
    this.proc.send(msg);
  }

  /** Asks the child to close and exit; kills it if it does not. */
  async close(): Promise<void> {
    if (this.exited) return;
    if (this.proc.connected) this.proc.send({ type: 'close' });
    try {
      await waitFor(() => this.exited, 5_000, 'child exit');
    } finally {
      if (!this.exited) this.proc.kill('SIGKILL');
    }
  }
}

function isMessage(m: unknown, type: string): boolean {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}

export function fixturePath(name: string): string {
  return path.join(__dirname, 'fixtures', `${name}.js`);
}

/**
 * Runs fixture `name` with node (with `nodeArgs` such as --expose-gc, and
 * optionally under a descriptor limit through prlimit), with an IPC channel.
 */
export function spawnFixture(
  name: string,
  args: readonly string[],
  opts: { nofile?: number; env?: NodeJS.ProcessEnv; nodeArgs?: readonly string[] } = {},
): ChildServer {
  const script = fixturePath(name);
  const stdio: ('ignore' | 'inherit' | 'pipe' | 'ipc')[] = ['ignore', 'inherit', 'pipe', 'ipc'];
  const env = { ...process.env, ...(opts.env ?? {}) };
  const node = [...(opts.nodeArgs ?? []), script, ...args];
  const proc =
    opts.nofile !== undefined
      ? spawn('prlimit', [`--nofile=${opts.nofile}:${opts.nofile}`, process.execPath, ...node], { stdio, env })
      : spawn(process.execPath, node, { stdio, env });
  return new ChildServer(proc);
}
