/**
 * `acceptpool bench`: the servers of the table in ./servers side by side,
 * each in a process of its own, driven by acceptpool's native load
 * generator from this process, in rounds that rotate which server goes
 * first. The scenarios are one table too (SCENARIOS below): a timed
 * scenario is a load shape, the server mode it needs and the metrics it
 * reports; the other kinds (idle memory, the load generator check, the
 * event-delivery micro-benchmark) have a runner each. Every timed run goes
 * through the noise check of ./machine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { LoadGenerator } from '../loadgen';
import type { LoadMode, LoadResult } from '../loadgen';
import { DEFAULT_DRIVER } from '../options';
import type { Driver } from '../options';
import { Child } from './children';
import type { ChildMessage, Launch } from './children';
import { PACKAGE_ROOT } from './cserver';
import { describeMachine, foreignCpuPct, NOISY_PCT, readTicks, waitForQuiet } from './machine';
import { overflowDelta, readListenCounters } from './netstat';
import { Progress } from './progress';
import { formatNumber, makeRow, spread } from './report';
import type { BenchReport, ClientCheck, EmitCheck, MetricRow, ServerInfo } from './report';
import { BASELINE, DRIVERS, serverCommand, serverEntry, serves } from './servers';
import type { ServeMode, ServerName } from './servers';

export interface BenchOptions {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Connects in flight in the storms. */
  connections: number;
  backlog: number;
  idleConnections: number;
  /** Load generator threads. */
  threads: number;
  sources: number;
  only: ScenarioId[];
  servers: ServerName[];
  /** Before each run, wait up to this long for a quiet machine (0: don't). */
  waitQuietMs: number;
  /** Measure a noisy run again, up to this many times. */
  retryNoisy: number;
  /** Events per run of the emit micro-benchmark. */
  emitCalls: number;
  progress: boolean;
}

// ---------------------------------------------------------------- the scenarios

/** What the load generator does in a timed scenario. */
interface LoadShape {
  mode: LoadMode;
  connections: number;
  threads: number;
  /** A PROXY v2 header first on every connection. */
  proxyHeader?: boolean;
}

/** What the server does; servers are started once per round for every scenario with the same shape. */
interface ServerShape {
  mode: ServeMode;
}

type TimedMetric = 'rate' | 'cpu' | 'p99' | 'open' | 'overflows' | 'generatorCpu';

interface TimedScenario {
  kind: 'timed';
  id: string;
  label: string;
  unit: 'conn' | 'msg' | 'req';
  inDefault: boolean;
  server: ServerShape;
  load: (o: BenchOptions) => LoadShape;
  metrics: readonly TimedMetric[];
}

interface OtherScenario {
  kind: 'client' | 'emit';
  id: string;
  label: string;
  inDefault: boolean;
}

/** Server RSS per connection held open without traffic, by a server in `server.mode`. */
interface IdleScenario {
  kind: 'idle';
  id: string;
  label: string;
  inDefault: boolean;
  server: ServerShape;
}

type Scenario = TimedScenario | OtherScenario | IdleScenario;

const ECHO: ServerShape = { mode: 'echo' };
// node:http's server and a hello-world handler (servers.ts), on acceptpool
// through handoff().
const HTTP: ServerShape = { mode: 'http' };

export const SCENARIOS = [
  {
    kind: 'timed',
    id: 'connect-close',
    label: 'connect + close',
    unit: 'conn',
    inDefault: true,
    server: ECHO,
    load: (o) => ({ mode: 'connect-close', connections: o.connections, threads: o.threads }),
    metrics: ['rate', 'cpu', 'overflows', 'generatorCpu'],
  },
  {
    kind: 'timed',
    id: 'reqrep',
    label: 'connect + 16 B req/rep + close',
    unit: 'conn',
    inDefault: true,
    server: ECHO,
    load: (o) => ({ mode: 'reqrep', connections: o.connections, threads: o.threads }),
    metrics: ['rate', 'cpu', 'generatorCpu'],
  },
  // The cost of the PROXY protocol per accept: reqrep again, every
  // connection starting with a v2 header, against a server with
  // proxyProtocol (acceptpool's servers only: compare with the reqrep row).
  {
    kind: 'timed',
    id: 'reqrep-proxy',
    label: 'connect + PROXY v2 header + 16 B req/rep + close',
    unit: 'conn',
    inDefault: false,
    server: { mode: 'proxy-echo' },
    load: (o) => ({ mode: 'reqrep', connections: o.connections, threads: o.threads, proxyHeader: true }),
    metrics: ['rate', 'cpu', 'generatorCpu'],
  },
  {
    kind: 'timed',
    id: 'echo100',
    label: 'echo 16 B, 100 connections',
    unit: 'msg',
    inDefault: true,
    server: ECHO,
    load: (o) => ({ mode: 'echo', connections: 100, threads: o.threads }),
    metrics: ['rate', 'cpu', 'p99', 'open'],
  },
  {
    kind: 'timed',
    id: 'echo1000',
    label: 'echo 16 B, 1,000 connections',
    unit: 'msg',
    inDefault: true,
    server: ECHO,
    load: (o) => ({ mode: 'echo', connections: 1000, threads: o.threads }),
    metrics: ['rate', 'cpu', 'p99', 'open'],
  },
  // Two generator threads connect faster than most servers accept: whether
  // a server keeps up with a storm or its accept queue overflows.
  {
    kind: 'timed',
    id: 'storm-overload',
    label: 'connect + close, 2 generator threads',
    unit: 'conn',
    inDefault: false,
    server: ECHO,
    load: (o) => ({ mode: 'connect-close', connections: 2 * o.connections, threads: 2 }),
    metrics: ['rate', 'cpu', 'overflows'],
  },
  {
    kind: 'timed',
    id: 'http-keepalive',
    label: 'http GET keep-alive, 100 connections',
    unit: 'req',
    inDefault: true,
    server: HTTP,
    load: (o) => ({ mode: 'http', connections: 100, threads: o.threads }),
    metrics: ['rate', 'cpu', 'p99'],
  },
  {
    kind: 'timed',
    id: 'http-close',
    label: 'http connect + GET + close',
    unit: 'req',
    inDefault: true,
    server: HTTP,
    load: (o) => ({ mode: 'http-close', connections: o.connections, threads: o.threads }),
    metrics: ['rate', 'cpu', 'overflows'],
  },
  { kind: 'idle', id: 'idle', label: 'idle memory', inDefault: true, server: ECHO },
  { kind: 'idle', id: 'http-idle', label: 'idle HTTP connections memory', inDefault: true, server: HTTP },
  { kind: 'client', id: 'client', label: 'load generator check', inDefault: true },
  { kind: 'emit', id: 'emit', label: 'event delivery micro-benchmark', inDefault: false },
] as const satisfies readonly Scenario[];

export type ScenarioId = (typeof SCENARIOS)[number]['id'];
export const SCENARIO_IDS: readonly ScenarioId[] = SCENARIOS.map((s) => s.id);
export const DEFAULT_SCENARIOS: readonly ScenarioId[] = SCENARIOS.filter((s) => s.inDefault).map((s) => s.id);

/** One run of a timed scenario against one server. */
interface TimedSample {
  rate: number;
  /** Echo: how long opening every connection took. */
  rampMs: number;
  cpuPerOpUs: number;
  p99Us: number;
  overflows: number;
  generatorCpuPct: number;
  /** Other processes' CPU during the run, % of one core. */
  foreignPct: number;
}

interface MetricDef {
  label: (t: TimedScenario, o: BenchOptions) => string;
  better: MetricRow['better'];
  sub: boolean;
  pick: (s: TimedSample) => number;
}

const METRICS: Record<TimedMetric, MetricDef> = {
  rate: { label: (t) => `${t.label}, ${t.unit}/s`, better: 'higher', sub: false, pick: (s) => s.rate },
  cpu: { label: (t) => `server CPU µs/${t.unit}`, better: 'lower', sub: true, pick: (s) => s.cpuPerOpUs },
  p99: { label: () => 'p99 round trip µs', better: 'lower', sub: true, pick: (s) => s.p99Us },
  open: {
    label: (t, o) => `ms to open all ${t.load(o).connections.toLocaleString('en-US')}`,
    better: 'lower',
    sub: true,
    pick: (s) => s.rampMs,
  },
  overflows: { label: () => 'listen overflows per run', better: 'none', sub: true, pick: (s) => s.overflows },
  generatorCpu: { label: () => 'generator CPU, % of a core', better: 'none', sub: true, pick: (s) => s.generatorCpuPct },
};

type ClientKind = 'native1' | 'native2' | 'net';
const CLIENT_KINDS: readonly ClientKind[] = ['native1', 'native2', 'net'];
const CLIENT_LABEL: Record<ClientKind, string> = {
  native1: 'native generator, 1 thread',
  native2: 'native generator, 2 threads',
  net: 'node:net client',
};
interface ClientSample {
  rate: number;
  cpuPerConnUs: number;
  foreignPct: number;
}

// The backlog of the servers in the client check and the idle scenario,
// which measure a client and memory, not accepting: deep enough (Linux caps
// it at somaxconn) that no dropped SYN stalls a client for a second.
export const DEEP_BACKLOG = 4096;
const IDLE_WARMUP_MS = 300;
// Idle connections below which RSS per connection is mostly noise.
const IDLE_RELIABLE = 5000;
// Expected seconds of an idle run besides opening the connections.
const IDLE_BASE_SECONDS = 1.5;
// Rounds inside one run of the emit micro-benchmark (one run per bench round).
const EMIT_ROUNDS = 5;
// Every server process exits by itself after this long, whatever happens here.
const SERVER_LIFETIME_S = 3600;

interface ServerProc {
  name: ServerName;
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

/** The list turned `by` places: round r starts with a different server. */
function rotate<T>(list: readonly T[], by: number): T[] {
  return list.map((_, i) => list[(i + by) % list.length]);
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
  private readonly running: ServerProc[] = [];
  private readonly progress: Progress;
  private readonly timed: TimedScenario[];
  private readonly idles: IdleScenario[];
  /** The servers measured: those asked for that can run here, in that order. */
  private readonly names: ServerName[] = [];
  /** How to launch each server this run starts (the measured ones, and the load generator check's). */
  private readonly launches = new Map<ServerName, Launch>();
  private readonly skipped: Array<{ name: ServerName; reason: string }> = [];
  private readonly engines = new Map<ServerName, string>();
  private readonly errors: Record<string, Record<string, number>> = {};
  private readonly noise = { samples: [] as number[], retried: 0, waitsTimedOut: 0 };

  constructor(
    private readonly o: BenchOptions,
    private readonly command: string,
  ) {
    const all: readonly Scenario[] = SCENARIOS;
    this.timed = all.filter((s): s is TimedScenario => s.kind === 'timed' && o.only.includes(s.id as ScenarioId));
    this.idles = all.filter((s): s is IdleScenario => s.kind === 'idle' && o.only.includes(s.id as ScenarioId));
    for (const name of o.servers) {
      const prepared = serverEntry(name).prepare();
      if ('unavailable' in prepared) {
        this.skipped.push({ name, reason: prepared.unavailable });
      } else {
        this.launches.set(name, prepared);
        this.names.push(name);
      }
    }
    const n = this.names.length;
    const runSeconds = (o.warmupMs + o.durationMs) / 1000 + 0.3;
    const has = (id: ScenarioId): boolean => o.only.includes(id);
    const perRound =
      this.timed.length * n * runSeconds +
      this.idles.length * n * (IDLE_BASE_SECONDS + o.idleConnections / 10000) +
      (has('client') ? CLIENT_KINDS.length * runSeconds : 0) +
      (has('emit') ? 4 * EMIT_ROUNDS * o.emitCalls * 6e-9 + 0.3 : 0) +
      0.5;
    const stepsPerRound = this.timed.length * n + this.idles.length * n + (has('client') ? CLIENT_KINDS.length : 0) + (has('emit') ? 1 : 0);
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
    const machine = describeMachine();
    const o = this.o;
    for (const s of this.skipped) this.progress.note(`skipping ${s.name}: ${s.reason}`);
    if (this.names.length === 0) {
      throw new Error(`no server to measure: ${this.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
    }
    const samples = new Map<string, TimedSample[]>();
    const idle = new Map<string, number[]>();
    const client = new Map<ClientKind, { rate: number[]; cpu: number[] }>();
    const emit = new Map<string, number[]>();
    const groups = new Map<string, TimedScenario[]>();
    for (const t of this.timed) groups.set(JSON.stringify(t.server), [...(groups.get(JSON.stringify(t.server)) ?? []), t]);
    try {
      for (let round = 0; round < o.rounds; round++) {
        // Rotate which server goes first, so none always runs on a machine
        // another has just warmed (or heated).
        const order = rotate(this.names, round);
        const tag = `round ${round + 1}/${o.rounds}`;
        for (const scenarios of groups.values()) {
          const procs: ServerProc[] = [];
          const mode = scenarios[0].server.mode;
          for (const name of order) if (serves(name, mode)) procs.push(await this.startServer(name, mode));
          for (const t of scenarios) {
            for (const p of procs) {
              this.progress.begin(`${tag} · ${t.label} · ${serverEntry(p.name).label}`, (o.warmupMs + o.durationMs) / 1000 + 0.3);
              const s = await this.sampled(() => this.measureTimed(t, p));
              const key = `${t.id}:${p.name}`;
              samples.set(key, [...(samples.get(key) ?? []), s]);
              this.progress.end();
            }
          }
          await Promise.all(procs.map((p) => this.stopServer(p)));
        }
        for (const scenario of this.idles) {
          for (const name of order) {
            if (!serves(name, scenario.server.mode)) continue;
            this.progress.begin(
              `${tag} · ${scenario.label}, ${o.idleConnections.toLocaleString('en-US')} connections · ${serverEntry(name).label}`,
              IDLE_BASE_SECONDS + o.idleConnections / 10000,
            );
            const key = `${scenario.id}:${name}`;
            idle.set(key, [...(idle.get(key) ?? []), await this.measureIdle(name, scenario.server.mode)]);
            this.progress.end();
          }
        }
        if (o.only.includes('client')) await this.clientCheck(round, tag, client);
        if (o.only.includes('emit')) {
          this.progress.begin(`${tag} · event delivery micro-benchmark`, 4 * EMIT_ROUNDS * o.emitCalls * 6e-9);
          await this.runEmit(emit);
          this.progress.end();
        }
      }
    } finally {
      this.progress.finish();
      await Promise.all([...this.running].map((p) => this.stopServer(p)));
    }
    return this.report(started, machine, samples, idle, client, emit);
  }

  private async startServer(name: ServerName, mode: ServeMode, backlog = this.o.backlog): Promise<ServerProc> {
    this.check();
    let launch = this.launches.get(name);
    if (launch === undefined) {
      const prepared = serverEntry(name).prepare();
      if ('unavailable' in prepared) throw new Error(`${serverEntry(name).label} cannot run here: ${prepared.unavailable}`);
      launch = prepared;
      this.launches.set(name, launch);
    }
    const child = new Child(`${serverEntry(name).label} server`, serverCommand(launch, mode, backlog, SERVER_LIFETIME_S));
    try {
      const m = await child.waitFor('listening', 15000);
      const proc: ServerProc = { name, child, port: num(m, 'port'), engine: typeof m.engine === 'string' ? m.engine : '' };
      if (!(proc.port > 0)) throw new Error(`${child.name} announced no port`);
      this.engines.set(name, proc.engine);
      this.running.push(proc);
      return proc;
    } catch (err) {
      await child.stop(500);
      throw err;
    }
  }

  private async stopServer(p: ServerProc): Promise<void> {
    await p.child.stop();
    const i = this.running.indexOf(p);
    if (i >= 0) this.running.splice(i, 1);
  }

  /**
   * One measurement through the noise check: after waiting for a quiet
   * machine (when asked), and again, up to --retry-noisy times, while other
   * processes took more than NOISY_PCT of a core; the least disturbed run
   * is kept.
   */
  private async sampled<T extends { foreignPct: number }>(measure: () => Promise<T>): Promise<T> {
    let kept: T | undefined;
    for (let attempt = 0; ; attempt++) {
      if (this.o.waitQuietMs > 0 && !(await waitForQuiet(this.o.waitQuietMs, () => this.aborted))) this.noise.waitsTimedOut++;
      this.check();
      const s = await measure();
      if (kept === undefined || s.foreignPct < kept.foreignPct) kept = s;
      if (!(s.foreignPct > NOISY_PCT) || attempt >= this.o.retryNoisy) break;
      this.noise.retried++;
      this.progress.note(`  other processes used ${Math.round(s.foreignPct)}% of a core during that run: measuring it again`);
    }
    this.noise.samples.push(kept.foreignPct);
    return kept;
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

  private countErrors(name: ServerName, r: LoadResult): void {
    const into = (this.errors[name] ??= {});
    for (const [error, n] of Object.entries(r.errors)) into[error] = (into[error] ?? 0) + n;
  }

  private async measureTimed(t: TimedScenario, p: ServerProc): Promise<TimedSample> {
    this.check();
    const before = await this.settle(p);
    const shape = t.load(this.o);
    const counters0 = readListenCounters();
    const ticks0 = readTicks();
    const self0 = process.cpuUsage();
    const r = await this.gen.run({
      ...shape,
      port: p.port,
      duration: this.o.durationMs,
      warmup: this.o.warmupMs,
      sourceAddresses: this.o.sources,
    });
    const self = process.cpuUsage(self0);
    const ticks1 = readTicks();
    const counters1 = readListenCounters();
    this.check();
    const after = await p.child.request('stats');
    this.countErrors(p.name, r);
    const serverCpu = num(after, 'cpuUs') - num(before, 'cpuUs');
    const wallUs = ticks0 !== null && ticks1 !== null ? (ticks1.at - ticks0.at) * 1000 : NaN;
    return {
      rate: r.rate,
      rampMs: r.rampMs,
      cpuPerOpUs: r.total > 0 ? serverCpu / r.total : NaN,
      p99Us: r.latencyUs.p99,
      overflows: overflowDelta(counters0, counters1),
      generatorCpuPct: (r.cpuUs / wallUs) * 100,
      foreignPct: foreignCpuPct(ticks0, ticks1, self.user + self.system + serverCpu),
    };
  }

  /**
   * Server RSS per idle connection, on a fresh server: after storms, a
   * server's freed heap would absorb the new connections and hide their
   * cost. A short connect + close warm-up first puts what any server pays
   * once (code paged in, first buffers) into the baseline.
   */
  private async measureIdle(name: ServerName, mode: ServeMode): Promise<number> {
    const p = await this.startServer(name, mode, DEEP_BACKLOG);
    try {
      // An http server warms up on requests, so its request path is paged in too.
      const warm = mode === 'http' ? 'http-close' : 'connect-close';
      await this.gen.run({ mode: warm, port: p.port, duration: IDLE_WARMUP_MS, warmup: 0, sourceAddresses: this.o.sources });
      return await this.holdIdle(p);
    } finally {
      await this.stopServer(p);
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
      this.countErrors(p.name, await running);
    }
  }

  /** The acceptpool server the load generator check runs against: the first asked for, else the default. */
  private get clientServer(): ServerName {
    return this.names.find((n) => DRIVERS.includes(n as Driver)) ?? DEFAULT_DRIVER;
  }

  /**
   * The load generator itself: connect + close from the native generator (1
   * and 2 threads) and from a node:net client, against one acceptpool
   * server with a deep backlog, so that no dropped SYN stalls a client and
   * what differs is only how fast each client connects.
   */
  private async clientCheck(round: number, tag: string, into: Map<ClientKind, { rate: number[]; cpu: number[] }>): Promise<void> {
    const server = await this.startServer(this.clientServer, 'echo', DEEP_BACKLOG);
    try {
      for (const kind of rotate(CLIENT_KINDS, round)) {
        this.progress.begin(`${tag} · load generator check · ${CLIENT_LABEL[kind]}`, (this.o.warmupMs + this.o.durationMs) / 1000 + 0.3);
        const r = await this.sampled(() =>
          kind === 'net' ? this.netClient(server) : this.nativeClient(server, kind === 'native2' ? 2 : 1),
        );
        const entry = into.get(kind) ?? { rate: [], cpu: [] };
        entry.rate.push(r.rate);
        entry.cpu.push(r.cpuPerConnUs);
        into.set(kind, entry);
        this.progress.end();
      }
    } finally {
      await this.stopServer(server);
    }
  }

  private async nativeClient(p: ServerProc, threads: number): Promise<ClientSample> {
    this.check();
    const before = await this.settle(p);
    const ticks0 = readTicks();
    const self0 = process.cpuUsage();
    const r = await this.gen.run({
      mode: 'connect-close',
      port: p.port,
      connections: this.o.connections,
      threads,
      duration: this.o.durationMs,
      warmup: this.o.warmupMs,
      sourceAddresses: this.o.sources,
    });
    const self = process.cpuUsage(self0);
    const ticks1 = readTicks();
    this.check();
    const serverCpu = num(await p.child.request('stats'), 'cpuUs') - num(before, 'cpuUs');
    return {
      rate: r.rate,
      cpuPerConnUs: r.total > 0 ? r.cpuUs / r.total : NaN,
      foreignPct: foreignCpuPct(ticks0, ticks1, self.user + self.system + serverCpu),
    };
  }

  private async netClient(p: ServerProc): Promise<ClientSample> {
    this.check();
    const before = await this.settle(p);
    const ticks0 = readTicks();
    const self0 = process.cpuUsage();
    const script = path.join(__dirname, 'net-client-child.js');
    const args = [p.port, this.o.connections, this.o.durationMs, this.o.warmupMs].map(String);
    const child = new Child('node:net client', { command: process.execPath, args: [script, ...args] });
    try {
      const m = await child.waitFor('result', this.o.warmupMs + this.o.durationMs + 15000);
      const self = process.cpuUsage(self0);
      const ticks1 = readTicks();
      const serverCpu = num(await p.child.request('stats'), 'cpuUs') - num(before, 'cpuUs');
      const total = num(m, 'total');
      return {
        rate: num(m, 'rate'),
        cpuPerConnUs: total > 0 ? num(m, 'cpuUs') / total : NaN,
        foreignPct: foreignCpuPct(ticks0, ticks1, self.user + self.system + serverCpu + num(m, 'cpuUs')),
      };
    } finally {
      await child.stop(1000);
    }
  }

  /** One run of the event-delivery micro-benchmark, in a fresh Node. */
  private async runEmit(into: Map<string, number[]>): Promise<void> {
    this.check();
    const script = path.join(__dirname, 'emit-child.js');
    const child = new Child('emit micro-benchmark', {
      command: process.execPath,
      args: [script, String(this.o.emitCalls), String(EMIT_ROUNDS)],
    });
    try {
      const m = await child.waitFor('result', 120000);
      if (m.ran !== true) throw new Error('emit micro-benchmark: not every listener ran');
      const variants = Array.isArray(m.variants) ? (m.variants as Array<{ label: string; nsPerEvent: number[] }>) : [];
      for (const v of variants) into.set(v.label, [...(into.get(v.label) ?? []), ...v.nsPerEvent]);
    } finally {
      await child.stop(1000);
    }
  }

  private report(
    started: number,
    machine: BenchReport['machine'],
    samples: Map<string, TimedSample[]>,
    idle: Map<string, number[]>,
    client: Map<ClientKind, { rate: number[]; cpu: number[] }>,
    emit: Map<string, number[]>,
  ): BenchReport {
    const o = this.o;
    const names = this.names;
    const baseline = names.includes(BASELINE) ? BASELINE : null;
    // Columns: the baseline first, then the others as asked for.
    const columns = baseline !== null ? [baseline, ...names.filter((n) => n !== baseline)] : names;
    const rows: MetricRow[] = [];
    const pick = (id: string, name: ServerName, f: (s: TimedSample) => number): number[] => (samples.get(`${id}:${name}`) ?? []).map(f);
    for (const t of this.timed) {
      for (const metric of t.metrics) {
        const def = METRICS[metric];
        const byServer = columns.map((n): [string, number[]] => [n, pick(t.id, n, def.pick)]);
        rows.push(makeRow(`${t.id}.${metric}`, def.label(t, o), def.better, byServer, baseline, def.sub));
      }
    }
    for (const scenario of this.idles) {
      const byServer = columns.map((n): [string, number[]] => [n, idle.get(`${scenario.id}:${n}`) ?? []]);
      const what = scenario.server.mode === 'http' ? 'idle HTTP (node:http, no request yet)' : 'idle';
      const label = `${what}: server RSS bytes/conn (${o.idleConnections.toLocaleString('en-US')} conns)`;
      rows.push(makeRow(`${scenario.id}.rss`, label, 'lower', byServer, baseline));
    }
    let clientCheck: ClientCheck | null = null;
    const net = client.get('net');
    if (net !== undefined) {
      const clients = CLIENT_KINDS.filter((k) => client.has(k)).map((k) => {
        const c = client.get(k) ?? { rate: [], cpu: [] };
        return { label: CLIENT_LABEL[k], rate: spread(c.rate), cpuUsPerConn: spread(c.cpu) };
      });
      const best = Math.max(...clients.filter((c) => c.label !== CLIENT_LABEL.net).map((c) => c.rate.median));
      clientCheck = {
        server: `${serverEntry(this.clientServer).label} (${this.engines.get(this.clientServer) ?? ''}), backlog ${DEEP_BACKLOG}`,
        connections: o.connections,
        clients,
        ratio: best / spread(net.rate).median,
      };
    }
    const emitCheck: EmitCheck | null =
      emit.size > 0 ? { calls: o.emitCalls, variants: [...emit].map(([label, ns]) => ({ label, nsPerEvent: spread(ns) })) } : null;
    const sumOverflows = (name: ServerName): number | null => {
      const v = pick('connect-close', name, (s) => s.overflows);
      return v.some((x) => !Number.isFinite(x)) ? null : v.reduce((a, b) => a + b, 0);
    };
    const notes: string[] = [];
    const noisy = this.noise.samples.filter((v) => v > NOISY_PCT).length;
    if (noisy > 0) notes.push(`${noisy} run(s) were noisy: rerun on a quieter machine, or with --wait-quiet S and --retry-noisy N`);
    if (readListenCounters() === null) notes.push('no /proc/net/netstat here: listen overflows are not counted');
    if (o.only.includes('reqrep-proxy')) {
      for (const name of columns) {
        const cpu = (id: string): number => spread(pick(id, name, (s) => s.cpuPerOpUs)).median;
        const rate = (id: string): number => spread(pick(id, name, (s) => s.rate)).median;
        if (!Number.isFinite(cpu('reqrep-proxy')) || !Number.isFinite(cpu('reqrep'))) continue;
        notes.push(
          `${serverEntry(name).label}: a PROXY v2 header costs ${formatNumber(cpu('reqrep-proxy') - cpu('reqrep'))} µs of server CPU per accept ` +
            `(reqrep-proxy vs reqrep), rate ×${formatNumber(rate('reqrep-proxy') / rate('reqrep'))}`,
        );
      }
    }
    for (const name of columns) {
      if (o.only.includes('connect-close') && (sumOverflows(name) ?? 0) > 0) {
        notes.push(
          `${serverEntry(name).label}'s accept queue overflowed: a client whose SYN is dropped waits the kernel's 1 s retransmit, ` +
            'so a run shorter than that can complete nothing',
        );
      }
    }
    if (this.idles.length > 0) {
      notes.push(`the idle scenario's servers listen with backlog ${DEEP_BACKLOG}: it measures memory, not accepting`);
      if (o.idleConnections < IDLE_RELIABLE) {
        notes.push(
          `with fewer than ${IDLE_RELIABLE.toLocaleString('en-US')} idle connections a server's growth can hide in memory it already holds`,
        );
      }
    }
    const foreign = spread(this.noise.samples);
    return {
      tool: 'acceptpool bench',
      version: packageVersion(),
      command: this.command,
      startedAt: new Date(started).toISOString(),
      seconds: (Date.now() - started) / 1000,
      machine,
      options: { ...o },
      servers: columns.map((n): ServerInfo => ({ name: n, label: serverEntry(n).label, engine: this.engines.get(n) ?? '' })),
      baseline,
      skipped: this.skipped,
      rows,
      clientCheck,
      emit: emitCheck,
      overflow: o.only.includes('connect-close')
        ? { connections: o.connections, backlog: o.backlog, servers: Object.fromEntries(columns.map((n) => [n, sumOverflows(n)])) }
        : null,
      errors: this.errors,
      noise: {
        thresholdPct: NOISY_PCT,
        runs: this.noise.samples.length,
        noisy,
        retried: this.noise.retried,
        medianPct: foreign.median,
        maxPct: foreign.max,
        waitsTimedOut: this.noise.waitsTimedOut,
      },
      notes,
    };
  }
}

export function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8'));
    const v = typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}
