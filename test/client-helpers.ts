/**
 * Helpers for the client (connector) tests: acceptpool clients with a log of
 * what they reported, node:net peers, a refused port, a listener that never
 * accepts, and cleanup of all of them.
 *
 * Every wait here is bounded in time; everything made through these helpers
 * is closed by `cleanupClients()` (the suites call `cleanupAll`, which also
 * runs helpers.cleanup()).
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as dns from 'node:dns';
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';

import { createClient } from '../src/index';
import type { Client, ClientOptions, CloseReason, ConnectOptions, Driver, Session } from '../src/index';
import { HOST4, cleanup, codeOf, waitFor, withTimeout } from './helpers';

// ------------------------------------------------------------- resources

function ignore(): void {
  // deliberately empty
}

const liveClients = new Set<Client>();
const liveNetServers = new Set<net.Server>();
const liveNetSockets = new Set<net.Socket>();
const liveChildren = new Set<ChildProcess>();

/** Closes every client, node:net peer and child process made here. */
export async function cleanupClients(): Promise<void> {
  for (const s of liveNetSockets) s.destroy();
  liveNetSockets.clear();
  for (const c of liveChildren) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  liveChildren.clear();
  const clients = [...liveClients];
  liveClients.clear();
  const servers = [...liveNetServers];
  liveNetServers.clear();
  await Promise.all([
    ...clients.map((c) => withTimeout(c.close(), 10_000, 'client.close() in cleanup')),
    ...servers.map((s) => withTimeout(new Promise<void>((resolve) => s.close(() => resolve())), 10_000, 'net server close in cleanup')),
  ]);
}

/** The afterEach hook of the client suites: clients first, then servers. */
export async function cleanupAll(): Promise<void> {
  await cleanupClients();
  await cleanup();
}

/** Registers a client made elsewhere so that cleanup closes it. */
export function trackClient(client: Client): Client {
  liveClients.add(client);
  return client;
}

/** Registers a node:net socket so that cleanup destroys it; its errors are ignored. */
export function trackSocket(socket: net.Socket): net.Socket {
  liveNetSockets.add(socket);
  socket.on('error', ignore);
  socket.once('close', () => liveNetSockets.delete(socket));
  return socket;
}

/** Registers a child process so that cleanup kills it. */
export function trackChild(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

// ---------------------------------------------------------------- client

export interface ClientCloseRecord {
  id: number;
  session: Session;
  reason: CloseReason;
  err: Error | undefined;
  at: number;
}

/** A client plus a log of what it reported. */
export interface ClientHarness {
  client: Client;
  driver: Driver;
  /** Every session in order of its 'session' event. */
  sessions: Session[];
  /** Open sessions by id. */
  open: Map<number, Session>;
  closes: ClientCloseRecord[];
  closeById: Map<number, ClientCloseRecord>;
  /** Ids that got an 'end' event. */
  ended: Set<number>;
  /** Bytes received per session id, in order (copied). */
  received: Map<number, Buffer[]>;
  receivedBytes(id: number): Buffer;
  /** The first `n` bytes received on `id`, once they have arrived. */
  readExactly(id: number, n: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves with the close record of `id`. */
  waitClose(id: number, timeoutMs?: number): Promise<ClientCloseRecord>;
  /** Resolves once `n` sessionClose events in total have been seen. */
  waitCloses(n: number, timeoutMs?: number): Promise<void>;
}

export function startClient(driver: Driver, options: ClientOptions = {}): ClientHarness {
  const client = trackClient(createClient({ ...options, driver }));
  const sessions: Session[] = [];
  const open = new Map<number, Session>();
  const closes: ClientCloseRecord[] = [];
  const closeById = new Map<number, ClientCloseRecord>();
  const received = new Map<number, Buffer[]>();
  const ended = new Set<number>();
  const lengthOf = (id: number): number => (received.get(id) ?? []).reduce((n, b) => n + b.length, 0);
  const h: ClientHarness = {
    client,
    driver,
    sessions,
    open,
    closes,
    closeById,
    ended,
    received,
    receivedBytes: (id) => Buffer.concat(received.get(id) ?? []),
    readExactly: async (id, n, timeoutMs = 10_000) => {
      await waitFor(() => lengthOf(id) >= n || closeById.has(id), timeoutMs, `${n} bytes on client session ${id} (have ${lengthOf(id)})`);
      const got = Buffer.concat(received.get(id) ?? []);
      assert.ok(got.length >= n, `client session ${id} closed after ${got.length} of ${n} bytes`);
      return got.subarray(0, n);
    },
    waitClose: async (id, timeoutMs = 10_000) => {
      await waitFor(() => closeById.has(id), timeoutMs, `client sessionClose of ${id}`);
      return closeById.get(id) as ClientCloseRecord;
    },
    waitCloses: (n, timeoutMs = 10_000) =>
      waitFor(() => closes.length >= n, timeoutMs, `${n} client sessionClose events (have ${closes.length})`),
  };
  client.on('session', (s) => {
    sessions.push(s);
    open.set(s.id, s);
  });
  client.on('data', (s, chunk) => {
    let list = received.get(s.id);
    if (list === undefined) received.set(s.id, (list = []));
    // The chunk is a view of a batch buffer: copy it.
    list.push(Buffer.from(chunk));
  });
  client.on('end', (s) => {
    ended.add(s.id);
  });
  client.on('sessionClose', (s, reason, err) => {
    open.delete(s.id);
    const rec: ClientCloseRecord = { id: s.id, session: s, reason, err, at: Date.now() };
    closes.push(rec);
    closeById.set(s.id, rec);
  });
  return h;
}

// ------------------------------------------------------------- net peers

/** A node:net server and the sockets it accepted. */
export interface NetPeer {
  server: net.Server;
  host: string;
  port: number;
  /** Accepted sockets, in order. */
  sockets: net.Socket[];
  /** Bytes each accepted socket received, by index in `sockets`. */
  received: Buffer[][];
}

/** A node:net server on `host` that echoes (or, with echo false, only records). */
export async function startNetServer(host: string = HOST4, echo = true): Promise<NetPeer> {
  const server = net.createServer();
  liveNetServers.add(server);
  const peer: NetPeer = { server, host, port: 0, sockets: [], received: [] };
  server.on('connection', (socket) => {
    trackSocket(socket);
    const chunks: Buffer[] = [];
    peer.sockets.push(socket);
    peer.received.push(chunks);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (echo) socket.write(d);
    });
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        resolve();
      });
    }),
    5_000,
    `node:net listen on ${host}`,
  );
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  peer.port = address.port;
  return peer;
}

/** A TCP port on `host` that nothing listens on (bound, noted, then closed). */
export async function refusedPort(host: string = HOST4): Promise<number> {
  const server = net.createServer();
  await withTimeout(new Promise<void>((resolve) => server.listen(0, host, () => resolve())), 5_000, `listen on ${host}`);
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), 5_000, 'close the probe server');
  return address.port;
}

// ------------------------------------------------- a listener that never accepts

let pythonChecked: boolean | null = null;

/** True when python3 can be run (the never-accepting listener needs it). */
export function havePython(): boolean {
  if (pythonChecked === null) {
    const r = spawnSync('python3', ['-c', 'print(1)'], { timeout: 5_000 });
    pythonChecked = r.status === 0;
  }
  return pythonChecked;
}

/** A listener whose accept queue is full, so the kernel drops further SYNs. */
export interface Blackhole {
  host: string;
  port: number;
  /** node:net connects that took the one accept-queue place, or are waiting. */
  fillers: net.Socket[];
}

// Listens with backlog 0 and never accepts; exits when its stdin closes (so
// it cannot outlive the test runner).
const BLACKHOLE_SCRIPT = [
  'import socket, sys',
  's = socket.socket()',
  "s.bind(('127.0.0.1', 0))",
  's.listen(0)',
  'print(s.getsockname()[1], flush=True)',
  'sys.stdin.read()',
].join('\n');

/**
 * Starts a python3 listener that never accepts and fills its accept queue
 * with node:net connects, so that a further connect neither completes nor is
 * refused: it waits for SYN retransmissions, as against a dead host.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const child = trackChild(spawn('python3', ['-c', BLACKHOLE_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] }));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.includes('\n') || child.exitCode !== null, 5_000, 'the python listener to print its port');
  const port = Number.parseInt(out, 10);
  assert.ok(Number.isInteger(port) && port > 0, `python listener printed ${JSON.stringify(out)}`);
  const fillers: net.Socket[] = [];
  let connected = 0;
  for (let i = 0; i < 8; i++) {
    const s = trackSocket(net.connect({ port, host: HOST4 }));
    s.once('connect', () => connected++);
    fillers.push(s);
  }
  // One filler takes the single accept-queue place (listen(0)); the others'
  // SYNs are dropped from then on.
  await waitFor(() => connected >= 1, 5_000, 'a filler connection to take the accept queue place');
  await new Promise((resolve) => setTimeout(resolve, 100));
  return { host: HOST4, port, fillers };
}

// ------------------------------------------------------------ assertions

/**
 * Asserts that calling `fn` fails with `code`, whether it throws at once or
 * returns a promise that rejects. Returns the error.
 */
export async function assertFailsCode(fn: () => unknown, code: string, what: string): Promise<Error> {
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    assert.ok(err instanceof Error, `${what}: threw a non-Error ${String(err)}`);
    assert.equal(codeOf(err), code, `${what}: wrong error ${String(err)}`);
    return err;
  }
  assert.ok(result instanceof Promise, `${what}: expected a failure with code ${code}, but it returned ${String(result)}`);
  let rejected: unknown;
  let didReject = false;
  try {
    await withTimeout(result, 10_000, what);
  } catch (err) {
    didReject = true;
    rejected = err;
  }
  assert.ok(didReject, `${what}: expected a failure with code ${code}, but it resolved`);
  assert.ok(rejected instanceof Error, `${what}: rejected with a non-Error ${String(rejected)}`);
  assert.equal(codeOf(rejected), code, `${what}: wrong error ${String(rejected)}`);
  return rejected;
}

/** Connects and returns the session, or fails the test with a clear message. */
export function connectOk(h: ClientHarness, port: number, host: string = HOST4, options?: ConnectOptions): Promise<Session> {
  return withTimeout(h.client.connect(port, host, options), 10_000, `client (${h.driver}) connect to ${host}:${port}`);
}

// ------------------------------------------------------------------ DNS

type LookupAll = (hostname: string, options: dns.LookupAllOptions) => Promise<dns.LookupAddress[]>;

export interface LookupStub {
  /** Lookups of the stubbed name, with the options they were given. */
  calls: { hostname: string; options: dns.LookupAllOptions }[];
  /** Puts the real dns.promises.lookup back. */
  restore(): void;
}

/**
 * Makes dns.promises.lookup answer `answer` for `name` only (other names go
 * to the real resolver), so a name can resolve to several chosen addresses.
 * Call restore() when done (an afterEach hook).
 */
export function stubLookup(name: string, answer: dns.LookupAddress[]): LookupStub {
  const promises = dns.promises;
  const original = promises.lookup as unknown as LookupAll;
  const calls: LookupStub['calls'] = [];
  const fake: LookupAll = (hostname, options) => {
    if (hostname !== name) return original.call(promises, hostname, options);
    calls.push({ hostname, options });
    return Promise.resolve(answer.map((a) => ({ ...a })));
  };
  assert.ok(Reflect.set(promises, 'lookup', fake), 'could not replace dns.promises.lookup');
  return {
    calls,
    restore: () => {
      Reflect.set(promises, 'lookup', original);
    },
  };
}
