/**
 * `acceptpool bench`: acceptpool and node:net servers side by side, each in
 * its own process, driven by acceptpool's native load generator from this
 * process, in rounds that alternate which server goes first. Scenarios:
 * connect + close, connect + request/reply + close, echo at 100 and 1,000
 * connections, idle RSS per connection; plus a check of the load generator
 * itself (native vs a node:net client against the same acceptpool server).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { LoadGenerator } from '../loadgen';
import type { LoadMode, LoadResult } from '../loadgen';
import type { Driver } from '../options';
import { Child } from './children';
import type { ChildMessage } from './children';
import { overflowDelta, readListenCounters } from './netstat';
import { Progress } from './progress';
import { makeRow, spread } from './report';
import type { BenchReport, ClientCheck, MetricRow, ServerKey } from './report';

export type ScenarioId = 'connect-close' | 'reqrep' | 'echo100' | 'echo1000' | 'idle' | 'client';
export const SCENARIOS: readonly ScenarioId[] = ['connect-close', 'reqrep', 'echo100', 'echo1000', 'idle', 'client'];

export interface BenchOptions {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Connects in flight in the storms. */
  connections: number;
  backlog: number;
  idleConnections: number;
  threads: number;
  sources: number;
  only: ScenarioId[];
  driver?: Driver;
  progress: boolean;
}

interface TimedScenario {
  id: Exclude<ScenarioId, 'idle' | 'client'>;
  mode: LoadMode;
  label: string;
  unit: string;
  connections: (o: BenchOptions) => number;
}

const TIMED: readonly TimedScenario[] = [
  { id: 'connect-close', mode: 'connect-close', label: 'connect + close', unit: 'conn', connections: (o) => o.connections },
  { id: 'reqrep', mode: 'reqrep', label: 'connect + 16 B req/rep + close', unit: 'conn', connections: (o) => o.connections },
  { id: 'echo100', mode: 'echo', label: 'echo 16 B, 100 connections', unit: 'msg', connections: () => 100 },
  { id: 'echo1000', mode: 'echo', label: 'echo 16 B, 1,000 connections', unit: 'msg', connections: () => 1000 },
];

const SERVER_NAME: Record<ServerKey, string> = { acceptpool: 'acceptpool', net: 'node:net' };

type ClientKind = 'native1' | 'native2' | 'net';
const CLIENT_KINDS: readonly ClientKind[] = ['native1', 'native2', 'net'];
const CLIENT_LABEL: Record<ClientKind, string> = {
  native1: 'native generator, 1 thread',
  native2: 'native generator, 2 threads',
  net: 'node:net client',
};
// The backlog of the servers in the client check and the idle scenario,
// which measure a client and memory, not accepting: deep enough (Linux caps
// it at somaxconn) that no dropped SYN stalls a client for a second.
export const DEEP_BACKLOG = 4096;
const IDLE_WARMUP_MS = 300;
// Idle connections below which RSS per connection is mostly noise.
const IDLE_RELIABLE = 5000;
// Expected seconds of an idle run besides opening the connections.
const IDLE_BASE_SECONDS = 1.5;

/** One run of a timed scenario against one server. */
interface TimedSample {
  rate: number;
  /** Echo: how long opening every connection took. */
  rampMs: number;
  cpuPerOpUs: number;
  p99Us: number;
  overflows: number;
}

interface ServerProc {
  key: ServerKey;
  child: Child;
  port: number;
  engine: string;
}

function num(m: ChildMessage, key: string): number {
  const v = m[key];
  return typeof v === 'number' ? v : NaN;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown inside a run that was aborted (Ctrl-C). */
export class BenchAborted extends Error {
  constructor() {
    super('aborted');
  }
}

export class Bench {
  private readonly gen = new LoadGenerator();
  private aborted = false;
  private readonly servers: ServerProc[] = [];
  private readonly progress: Progress;
  private readonly timed: TimedScenario[];
  private readonly errors: Record<ServerKey, Record<string, number>> = { acceptpool: {}, net: {} };

  constructor(private readonly o: BenchOptions) {
    this.timed = TIMED.filter((t) => o.only.includes(t.id));
    const runSeconds = (o.warmupMs + o.durationMs) / 1000 + 0.3;
    const perRound =
      this.timed.length * 2 * runSeconds +
      (o.only.includes('idle') ? 2 * (IDLE_BASE_SECONDS + o.idleConnections / 10000) : 0) +
      (o.only.includes('client') ? CLIENT_KINDS.length * runSeconds : 0) +
      0.5;
    const stepsPerRound = this.timed.length * 2 + (o.only.includes('idle') ? 2 : 0) + (o.only.includes('client') ? CLIENT_KINDS.length : 0);
    this.progress = new Progress(perRound * o.rounds, stepsPerRound * o.rounds, process.stderr, o.progress);
  }

  /** Ctrl-C: stop the generator; the caller stops the children and exits. */
  abort(): void {
    this.aborted = true;
    this.gen.stop();
    this.progress.finish();
  }

  private check(): void {
    if (this.aborted) throw new BenchAborted();
  }

  async run(): Promise<BenchReport> {
    const started = Date.now();
    const o = this.o;
    const samples = new Map<string, TimedSample[]>();
    const idle: Record<ServerKey, number[]> = { acceptpool: [], net: [] };
    const client = new Map<ClientKind, { rate: number[]; cpu: number[] }>();
    const engines: Record<ServerKey, string> = { acceptpool: '', net: '' };
    try {
      for (let round = 0; round < o.rounds; round++) {
        // Alternate which server goes first, so neither always runs on a
        // machine the other has just warmed (or heated).
        const order: ServerKey[] = round % 2 === 0 ? ['acceptpool', 'net'] : ['net', 'acceptpool'];
        const procs = this.timed.length > 0 ? await Promise.all(order.map((key) => this.startServer(key))) : [];
        for (const p of procs) engines[p.key] = p.engine;
        const tag = `round ${round + 1}/${o.rounds}`;
        for (const t of this.timed) {
          for (const p of procs) {
            this.progress.begin(`${tag} · ${t.label} · ${SERVER_NAME[p.key]}`, (o.warmupMs + o.durationMs) / 1000 + 0.3);
            const s = await this.measureTimed(t, p);
            const key = `${t.id}:${p.key}`;
            samples.set(key, [...(samples.get(key) ?? []), s]);
            this.progress.end();
          }
        }
        await Promise.all(procs.map((p) => p.child.stop()));
        this.servers.length = 0;
        if (o.only.includes('idle')) {
          for (const key of order) {
            this.progress.begin(`${tag} · idle memory, ${o.idleConnections.toLocaleString('en-US')} connections · ${SERVER_NAME[key]}`, IDLE_BASE_SECONDS + o.idleConnections / 10000);
            idle[key].push(await this.measureIdle(key, engines));
            this.progress.end();
          }
        }
        if (o.only.includes('client')) {
          await this.clientCheck(round, tag, client, engines);
        }
      }
    } finally {
      this.progress.finish();
      await Promise.all(this.servers.map((p) => p.child.stop()));
    }
    return this.report(started, samples, idle, engines, client);
  }

  private async startServer(key: ServerKey, backlog = this.o.backlog): Promise<ServerProc> {
    this.check();
    const script = path.join(__dirname, 'server-child.js');
    const args = [key, 'echo', String(backlog), key === 'acceptpool' ? (this.o.driver ?? '') : ''];
    const child = new Child(`${SERVER_NAME[key]} server`, script, args, ['--expose-gc']);
    try {
      const m = await child.waitFor('listening', 15000);
      const proc: ServerProc = { key, child, port: num(m, 'port'), engine: typeof m.engine === 'string' ? m.engine : '' };
      this.servers.push(proc);
      return proc;
    } catch (err) {
      await child.stop(500);
      throw err;
    }
  }

  /** Waits (bounded) until the server holds no connections from the last run. */
  private async settle(p: ServerProc): Promise<ChildMessage> {
    const deadline = Date.now() + 3000;
    let stats = await p.child.request('stats');
    while (num(stats, 'conns') > 0 && Date.now() < deadline) {
      await sleep(20);
      stats = await p.child.request('stats');
    }
    return stats;
  }

  private countErrors(key: ServerKey, r: LoadResult): void {
    for (const [name, n] of Object.entries(r.errors)) this.errors[key][name] = (this.errors[key][name] ?? 0) + n;
  }

  private async measureTimed(t: TimedScenario, p: ServerProc): Promise<TimedSample> {
    this.check();
    const before = await this.settle(p);
    const counters0 = readListenCounters();
    const r = await this.gen.run({
      mode: t.mode,
      port: p.port,
      connections: t.connections(this.o),
      threads: this.o.threads,
      duration: this.o.durationMs,
      warmup: this.o.warmupMs,
      sourceAddresses: this.o.sources,
    });
    const counters1 = readListenCounters();
    this.check();
    const after = await p.child.request('stats');
    this.countErrors(p.key, r);
    const cpu = num(after, 'cpuUs') - num(before, 'cpuUs');
    return {
      rate: r.rate,
      rampMs: r.rampMs,
      cpuPerOpUs: r.total > 0 ? cpu / r.total : NaN,
      p99Us: r.latencyUs.p99,
      overflows: overflowDelta(counters0, counters1),
    };
  }

  /**
   * Server RSS per idle connection, on a fresh server: after storms, a
   * server's freed heap would absorb the new connections and hide their
   * cost. A short connect + close warm-up first puts what any server pays
   * once (code paged in, first buffers) into the baseline.
   */
  private async measureIdle(key: ServerKey, engines: Record<ServerKey, string>): Promise<number> {
    const p = await this.startServer(key, DEEP_BACKLOG);
    engines[key] = p.engine;
    try {
      await this.gen.run({ mode: 'connect-close', port: p.port, duration: IDLE_WARMUP_MS, warmup: 0, sourceAddresses: this.o.sources });
      return await this.holdIdle(p);
    } finally {
      await p.child.stop();
      this.servers.splice(this.servers.indexOf(p), 1);
    }
  }

  private async holdIdle(p: ServerProc): Promise<number> {
    this.check();
    const n = this.o.idleConnections;
    await this.settle(p);
    await p.child.request('gc');
    const base = await p.child.request('stats');
    const running = this.gen.run({
      mode: 'idle',
      port: p.port,
      connections: n,
      threads: 1,
      duration: 120000,
      rampTimeout: 30000,
      sourceAddresses: this.o.sources,
    });
    try {
      const deadline = Date.now() + 30000;
      while (this.gen.progress().phase === 'ramp' && Date.now() < deadline) {
        this.check();
        await sleep(20);
      }
      const open = this.gen.progress().open;
      // Connections the kernel completed may still wait in the accept queue.
      let loaded = await p.child.request('stats');
      while (num(loaded, 'conns') < open && Date.now() < deadline + 10000) {
        this.check();
        await sleep(50);
        loaded = await p.child.request('stats');
      }
      await p.child.request('gc');
      loaded = await p.child.request('stats');
      const conns = num(loaded, 'conns');
      return conns > 0 ? (num(loaded, 'rss') - num(base, 'rss')) / conns : NaN;
    } finally {
      this.gen.stop();
      this.countErrors(p.key, await running);
    }
  }

  /**
   * The load generator itself: connect + close from the native generator (1
   * and 2 threads) and from a node:net client, against one acceptpool
   * server with a deep backlog, so that no dropped SYN stalls a client and
   * what differs is only how fast each client connects.
   */
  private async clientCheck(
    round: number,
    tag: string,
    into: Map<ClientKind, { rate: number[]; cpu: number[] }>,
    engines: Record<ServerKey, string>,
  ): Promise<void> {
    const server = await this.startServer('acceptpool', DEEP_BACKLOG);
    engines.acceptpool = server.engine;
    try {
      const kinds = [...CLIENT_KINDS];
      // Rotate the order each round.
      for (let i = 0; i < round % kinds.length; i++) kinds.push(kinds.shift() as ClientKind);
      for (const kind of kinds) {
        this.progress.begin(`${tag} · load generator check · ${CLIENT_LABEL[kind]}`, (this.o.warmupMs + this.o.durationMs) / 1000 + 0.3);
        const r = kind === 'net' ? await this.netClient(server) : await this.nativeClient(server, kind === 'native2' ? 2 : 1);
        const entry = into.get(kind) ?? { rate: [], cpu: [] };
        entry.rate.push(r.rate);
        entry.cpu.push(r.cpuPerConnUs);
        into.set(kind, entry);
        this.progress.end();
      }
    } finally {
      await server.child.stop();
      this.servers.splice(this.servers.indexOf(server), 1);
    }
  }

  private async nativeClient(p: ServerProc, threads: number): Promise<{ rate: number; cpuPerConnUs: number }> {
    this.check();
    await this.settle(p);
    const r = await this.gen.run({
      mode: 'connect-close',
      port: p.port,
      connections: this.o.connections,
      threads,
      duration: this.o.durationMs,
      warmup: this.o.warmupMs,
      sourceAddresses: this.o.sources,
    });
    this.check();
    return { rate: r.rate, cpuPerConnUs: r.total > 0 ? r.cpuUs / r.total : NaN };
  }

  private async netClient(p: ServerProc): Promise<{ rate: number; cpuPerConnUs: number }> {
    this.check();
    await this.settle(p);
    const script = path.join(__dirname, 'net-client-child.js');
    const args = [p.port, this.o.connections, this.o.durationMs, this.o.warmupMs].map(String);
    const child = new Child('node:net client', script, args);
    try {
      const m = await child.waitFor('result', this.o.warmupMs + this.o.durationMs + 15000);
      const total = num(m, 'total');
      return { rate: num(m, 'rate'), cpuPerConnUs: total > 0 ? num(m, 'cpuUs') / total : NaN };
    } finally {
      await child.stop(1000);
    }
  }

  private report(
    started: number,
    samples: Map<string, TimedSample[]>,
    idle: Record<ServerKey, number[]>,
    engines: Record<ServerKey, string>,
    client: Map<ClientKind, { rate: number[]; cpu: number[] }>,
  ): BenchReport {
    const o = this.o;
    const rows: MetricRow[] = [];
    const pick = (id: string, key: ServerKey, f: (s: TimedSample) => number): number[] => (samples.get(`${id}:${key}`) ?? []).map(f);
    for (const t of this.timed) {
      const both = (f: (s: TimedSample) => number): [number[], number[]] => [pick(t.id, 'acceptpool', f), pick(t.id, 'net', f)];
      rows.push(makeRow(`${t.id}.rate`, `${t.label}, ${t.unit}/s`, 'higher', ...both((s) => s.rate)));
      rows.push(makeRow(`${t.id}.cpu`, `server CPU µs/${t.unit}`, 'lower', ...both((s) => s.cpuPerOpUs), true));
      if (t.mode === 'echo') {
        rows.push(makeRow(`${t.id}.p99`, 'p99 round trip µs', 'lower', ...both((s) => s.p99Us), true));
        rows.push(makeRow(`${t.id}.open`, `ms to open all ${t.connections(o).toLocaleString('en-US')}`, 'lower', ...both((s) => s.rampMs), true));
      }
      if (t.id === 'connect-close') {
        rows.push(makeRow(`${t.id}.overflows`, 'listen overflows per run', 'none', ...both((s) => s.overflows), true));
      }
    }
    if (o.only.includes('idle')) {
      rows.push(makeRow('idle.rss', `idle: server RSS bytes/conn (${o.idleConnections.toLocaleString('en-US')} conns)`, 'lower', idle.acceptpool, idle.net));
    }
    let clientCheck: ClientCheck | null = null;
    const net = client.get('net');
    if (net !== undefined) {
      const clients = CLIENT_KINDS.filter((k) => client.has(k)).map((k) => {
        const c = client.get(k) ?? { rate: [], cpu: [] };
        return { label: CLIENT_LABEL[k], rate: spread(c.rate), cpuUsPerConn: spread(c.cpu) };
      });
      const netRate = spread(net.rate).median;
      const best = Math.max(...clients.filter((c) => c.label !== CLIENT_LABEL.net).map((c) => c.rate.median));
      clientCheck = {
        server: `acceptpool (${engines.acceptpool}), backlog ${DEEP_BACKLOG}`,
        connections: o.connections,
        clients,
        ratio: best / netRate,
      };
    }
    const sumOverflows = (key: ServerKey): number | null => {
      const v = pick('connect-close', key, (s) => s.overflows);
      return v.some((x) => !Number.isFinite(x)) ? null : v.reduce((a, b) => a + b, 0);
    };
    const notes: string[] = [];
    if (readListenCounters() === null) notes.push('no /proc/net/netstat here: listen overflows are not counted');
    for (const key of ['net', 'acceptpool'] as const) {
      if ((sumOverflows(key) ?? 0) > 0) {
        notes.push(
          `${SERVER_NAME[key]}'s accept queue overflowed: a client whose SYN is dropped waits the kernel's 1 s retransmit, ` +
            'so a run shorter than that can complete nothing',
        );
      }
    }
    if (o.only.includes('idle')) {
      notes.push(`the idle scenario's servers listen with backlog ${DEEP_BACKLOG}: it measures memory, not accepting`);
      if (o.idleConnections < IDLE_RELIABLE) {
        notes.push(`with fewer than ${IDLE_RELIABLE.toLocaleString('en-US')} idle connections a server's growth can hide in memory it already holds`);
      }
    }
    return {
      tool: 'acceptpool bench',
      version: packageVersion(),
      startedAt: new Date(started).toISOString(),
      seconds: (Date.now() - started) / 1000,
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        platform: `${os.platform()} ${os.arch()}`,
        kernel: os.release(),
      },
      options: { ...o },
      servers: { acceptpool: engines.acceptpool, net: engines.net },
      rows,
      clientCheck,
      overflow: o.only.includes('connect-close')
        ? { connections: o.connections, backlog: o.backlog, acceptpool: sumOverflows('acceptpool'), net: sumOverflows('net') }
        : null,
      errors: this.errors,
      notes,
    };
  }
}

export function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    const v = typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}
