// acceptpool benchmark suite: accept storms, echo and idle memory, always side by
// side with node:net (the ratios) and a minimal C epoll server (the limit of the
// machine), in one run, rounds alternating between servers, medians reported.
//
//   npx tsc -p tsconfig.json && node dist/benchmarks/run.js [options]
//
//   --quick                 short runs, one round (about a minute)
//   --only=a,b              scenarios: connect-close, reqrep, echo100, echo1000, idle (the default
//                           set) and storm-overload (connect + close from 2 loadgen threads)
//   --servers=a,b           c, net, inline, threaded (default: all that are available)
//   --rounds=N              rounds per scenario and server (default 3; --quick 1)
//   --duration=S            measured seconds per timed run (default 3; --quick 1)
//   --warmup=S              unmeasured seconds before each timed run (default 0.5)
//   --idle=N                idle connections for the memory scenario (default 15000)
//   --storm-conns=N         connects in flight in the storm scenarios (default 64)
//   --backlog=N             listen backlog given to every server (default 1024)
//   --src=N                 loadgen source addresses 127.0.0.1..127.0.0.N (default 8)
//   --loadgen-threads=N     loadgen threads for the timed scenarios (default 1)
//   --json FILE             also write every run and the medians as JSON
//   --wait-quiet=S          before each run, wait up to S s for other processes to leave the
//                           CPUs alone (default 0: don't wait)
//   --retry-noisy=N         redo a run up to N times when other processes took more than 25%
//                           of a core during it; the least disturbed run is kept (default 0)
//   --build-only            build the C tools and exit
//
// The load comes from benchmarks/loadgen/loadgen.c (built here with cc -O2 into
// build/bench/) and goes only to 127.0.0.0/8. Each server is a separate child
// process, started fresh for every run and stopped after it; every wait is
// bounded, and all children are stopped on exit and on SIGINT/SIGTERM.
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// ---------------------------------------------------------------- JSON helpers

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A number at a dotted path, or NaN. */
function num(o: JsonObject | undefined, dotted: string): number {
  let cur: Json | undefined = o;
  for (const key of dotted.split('.')) {
    if (!isObject(cur)) return NaN;
    cur = cur[key];
  }
  return typeof cur === 'number' ? cur : NaN;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- options

type ServerKind = 'c' | 'net' | 'inline' | 'threaded';
type ScenarioName = 'connect-close' | 'reqrep' | 'echo100' | 'echo1000' | 'idle' | 'storm-overload';

const ALL_SERVERS: ServerKind[] = ['c', 'net', 'inline', 'threaded'];
const ALL_SCENARIOS: ScenarioName[] = ['connect-close', 'reqrep', 'echo100', 'echo1000', 'idle', 'storm-overload'];
/** Run by default; the others only with --only. */
const DEFAULT_SCENARIOS: ScenarioName[] = ['connect-close', 'reqrep', 'echo100', 'echo1000', 'idle'];
const SERVER_LABEL: Record<ServerKind, string> = {
  c: 'C epoll (limit)',
  net: 'node:net',
  inline: 'acceptpool inline',
  threaded: 'acceptpool threaded',
};

interface Options {
  quick: boolean;
  only: ScenarioName[];
  servers: ServerKind[];
  rounds: number;
  duration: number;
  warmup: number;
  idleConns: number;
  idlePerProcess: number;
  stormConns: number;
  backlog: number;
  srcAddrs: number;
  loadgenThreads: number;
  json: string | undefined;
  buildOnly: boolean;
  settleMs: number;
  waitQuiet: number;
  retryNoisy: number;
}

function usageAndExit(message: string): never {
  process.stderr.write(`${message}\nsee the header of benchmarks/run.ts for the options\n`);
  process.exit(2);
}

function parseList<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const out: T[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const alias = item === 'node' || item === 'node:net' ? 'net' : item;
    const found = allowed.find((a) => a === alias);
    if (found === undefined) usageAndExit(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`);
    out.push(found);
  }
  return out;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    only: [...DEFAULT_SCENARIOS],
    servers: [...ALL_SERVERS],
    rounds: quick ? 1 : 3,
    duration: quick ? 1 : 3,
    warmup: quick ? 0.3 : 0.5,
    idleConns: quick ? 5000 : 15000,
    idlePerProcess: 16000,
    stormConns: 64,
    backlog: 1024,
    srcAddrs: 8,
    loadgenThreads: 1,
    json: undefined,
    buildOnly: false,
    settleMs: quick ? 100 : 200,
    waitQuiet: 0,
    retryNoisy: 0,
  };
  const positiveNumber = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) usageAndExit(`--${name} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const takeValue = (): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      const next = argv[i + 1];
      if (next === undefined) usageAndExit(`${name} needs a value`);
      i++;
      return next;
    };
    switch (name) {
      case '--quick':
        break;
      case '--build-only':
        o.buildOnly = true;
        break;
      case '--only':
        o.only = parseList(takeValue(), ALL_SCENARIOS, 'scenario');
        break;
      case '--servers':
        o.servers = parseList(takeValue(), ALL_SERVERS, 'server');
        break;
      case '--rounds':
        o.rounds = Math.round(positiveNumber(takeValue(), 'rounds'));
        break;
      case '--duration':
        o.duration = positiveNumber(takeValue(), 'duration');
        break;
      case '--warmup':
        o.warmup = Number(takeValue());
        break;
      case '--idle':
        o.idleConns = Math.round(positiveNumber(takeValue(), 'idle'));
        break;
      case '--storm-conns':
        o.stormConns = Math.round(positiveNumber(takeValue(), 'storm-conns'));
        break;
      case '--backlog':
        o.backlog = Math.round(positiveNumber(takeValue(), 'backlog'));
        break;
      case '--src':
        o.srcAddrs = Math.min(254, Math.round(positiveNumber(takeValue(), 'src')));
        break;
      case '--loadgen-threads':
        o.loadgenThreads = Math.round(positiveNumber(takeValue(), 'loadgen-threads'));
        break;
      case '--json':
        o.json = takeValue();
        break;
      case '--wait-quiet':
        o.waitQuiet = Number(takeValue());
        break;
      case '--retry-noisy':
        o.retryNoisy = Math.round(Number(takeValue()));
        break;
      case '--help':
      case '-h':
        usageAndExit('usage: node dist/benchmarks/run.js [--quick] [--only=...] [--servers=...] [--json FILE]');
        break;
      default:
        usageAndExit(`unknown option ${arg}`);
    }
  }
  if (!Number.isFinite(o.warmup) || o.warmup < 0) usageAndExit('--warmup needs a number >= 0');
  if (!Number.isFinite(o.waitQuiet) || o.waitQuiet < 0) usageAndExit('--wait-quiet needs seconds >= 0');
  if (!Number.isFinite(o.retryNoisy) || o.retryNoisy < 0 || o.retryNoisy > 5) usageAndExit('--retry-noisy needs 0..5');
  if (o.idleConns > 19500) usageAndExit('--idle: the server holds at most ~19,500 connections under the 20,000 fd limit');
  return o;
}

// ---------------------------------------------------------------- child processes

interface Waiter {
  pred: (m: JsonObject) => boolean;
  resolve: (m: JsonObject) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const children = new Set<Child>();

class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  running = true;
  private lineBuf = '';
  private readonly queue: JsonObject[] = [];
  private readonly waiters: Waiter[] = [];
  private stderrTail = '';

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
  ) {
    this.proc = spawn(cmd, args, { env: process.env });
    children.add(this);
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdin.on('error', () => undefined);
    this.proc.stdout.on('data', (chunk: string) => this.onStdout(chunk));
    this.proc.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      const done = (code: number | null): void => {
        if (!this.running) return;
        this.running = false;
        children.delete(this);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`${this.name} exited (code ${String(code)}) ${this.stderr()}`));
        }
        resolve(code);
      };
      this.proc.on('exit', (code, signal) => done(code ?? (signal !== null ? -1 : null)));
      this.proc.on('error', (err) => {
        this.stderrTail += `\nspawn error: ${err.message}`;
        done(-1);
      });
    });
  }

  stderr(): string {
    const t = this.stderrTail.trim();
    return t.length > 0 ? `: ${t.slice(-600)}` : '';
  }

  private onStdout(chunk: string): void {
    this.lineBuf += chunk;
    let nl = this.lineBuf.indexOf('\n');
    while (nl >= 0) {
      const line = this.lineBuf.slice(0, nl).trim();
      this.lineBuf = this.lineBuf.slice(nl + 1);
      nl = this.lineBuf.indexOf('\n');
      if (!line.startsWith('{')) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      if (!isObject(parsed)) continue;
      const wi = this.waiters.findIndex((w) => w.pred(parsed as JsonObject));
      if (wi >= 0) {
        const [w] = this.waiters.splice(wi, 1);
        clearTimeout(w.timer);
        w.resolve(parsed);
      } else {
        this.queue.push(parsed);
        if (this.queue.length > 100) this.queue.shift();
      }
    }
  }

  /** The next stdout JSON line matching pred, within timeoutMs. */
  next(pred: (m: JsonObject) => boolean, timeoutMs: number, what: string): Promise<JsonObject> {
    const qi = this.queue.findIndex(pred);
    if (qi >= 0) return Promise.resolve(this.queue.splice(qi, 1)[0]);
    if (!this.running) return Promise.reject(new Error(`${this.name} is not running${this.stderr()}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms${this.stderr()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  send(line: string): void {
    if (this.running && this.proc.stdin.writable) this.proc.stdin.write(line + '\n');
  }

  request(command: string, event: string, timeoutMs = 10000): Promise<JsonObject> {
    const p = this.next((m) => m.event === event, timeoutMs, `"${event}" reply`);
    this.send(command);
    return p;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) {
      try {
        this.proc.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** quit + EOF on stdin, then SIGTERM, then SIGKILL; bounded. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.send('quit');
    this.proc.stdin.end();
    if (await exitsWithin(this, graceMs)) return;
    this.kill('SIGTERM');
    if (await exitsWithin(this, 1000)) return;
    this.kill('SIGKILL');
    await exitsWithin(this, 2000);
  }
}

async function exitsWithin(child: Child, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([child.exited.then(() => true), timeout]);
  if (timer !== undefined) clearTimeout(timer);
  return result;
}

function killAllChildren(signal: NodeJS.Signals): void {
  for (const c of children) c.kill(signal);
}

// ---------------------------------------------------------------- build + paths

interface Paths {
  root: string;
  loadgen: string;
  cserver: string;
  serversDir: string;
  acceptpoolIndex: string;
  acceptpoolAddon: string;
}

function findPaths(): Paths {
  const candidates = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..'), process.cwd()];
  const root =
    candidates.find((c) => fs.existsSync(path.join(c, 'benchmarks', 'loadgen', 'loadgen.c'))) ?? process.cwd();
  return {
    root,
    loadgen: path.join(root, 'build', 'bench', 'loadgen'),
    cserver: path.join(root, 'build', 'bench', 'cserver'),
    serversDir: path.join(__dirname, 'servers'),
    acceptpoolIndex: path.join(root, 'dist', 'src', 'index.js'),
    acceptpoolAddon: path.join(root, 'build', 'Release', 'acceptpool.node'),
  };
}

function buildTools(p: Paths): void {
  const cc = process.env.CC ?? 'cc';
  const outDir = path.dirname(p.loadgen);
  fs.mkdirSync(outDir, { recursive: true });
  const tools: Array<[string, string, string[]]> = [
    [path.join(p.root, 'benchmarks', 'loadgen', 'loadgen.c'), p.loadgen, ['-pthread']],
    [path.join(p.root, 'benchmarks', 'loadgen', 'cserver.c'), p.cserver, []],
  ];
  for (const [src, out, extra] of tools) {
    const fresh = fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs;
    if (fresh) continue;
    const args = ['-O2', '-Wall', '-Wextra', ...extra, '-o', out, src];
    process.stderr.write(`building ${path.relative(p.root, out)}: ${cc} ${args.join(' ')}\n`);
    execFileSync(cc, args, { stdio: 'inherit', timeout: 120000 });
  }
}

// ---------------------------------------------------------------- servers

interface RunningServer {
  kind: ServerKind;
  child: Child;
  port: number;
}

function serverCommand(kind: ServerKind, p: Paths, o: Options): [string, string[]] {
  switch (kind) {
    case 'c':
      return [p.cserver, ['-b', String(o.backlog), '-T', '1800']];
    case 'net':
      return [process.execPath, ['--expose-gc', path.join(p.serversDir, 'net-echo.js'), `--backlog=${o.backlog}`]];
    case 'inline':
    case 'threaded':
      return [
        process.execPath,
        ['--expose-gc', path.join(p.serversDir, 'acceptpool-echo.js'), kind, `--backlog=${o.backlog}`],
      ];
  }
}

async function startServer(kind: ServerKind, p: Paths, o: Options): Promise<RunningServer> {
  const [cmd, args] = serverCommand(kind, p, o);
  const child = new Child(SERVER_LABEL[kind], cmd, args);
  try {
    const msg = await child.next((m) => m.event === 'listening', 15000, 'listening line');
    const port = num(msg, 'port');
    if (!(port > 0)) throw new Error(`${child.name} reported no port`);
    return { kind, child, port };
  } catch (err) {
    await child.stop(500);
    throw err;
  }
}

// ---------------------------------------------------------------- loadgen

function loadgenArgs(mode: string, port: number, extra: Record<string, string | number>): string[] {
  const args = ['-m', mode, '-p', String(port), '-H', '127.0.0.1'];
  for (const [k, v] of Object.entries(extra)) args.push(k, String(v));
  return args;
}

async function runLoadgen(p: Paths, args: string[], timeoutMs: number): Promise<JsonObject> {
  const lg = new Child('loadgen', p.loadgen, args);
  try {
    const result = await lg.next((m) => typeof m.mode === 'string', timeoutMs, 'result line');
    await exitsWithin(lg, 3000);
    return result;
  } finally {
    if (lg.running) {
      lg.kill('SIGTERM');
      if (!(await exitsWithin(lg, 1000))) lg.kill('SIGKILL');
    }
  }
}

// ---------------------------------------------------------------- scenarios

interface ScenarioDef {
  name: ScenarioName;
  title: string;
  mode: 'connect-close' | 'reqrep' | 'echo' | 'idle';
  conns: number;
  /** loadgen threads, when not --loadgen-threads */
  threads?: number;
}

function scenarioDefs(o: Options): ScenarioDef[] {
  const fmt = (n: number): string => n.toLocaleString('en-US');
  const all: ScenarioDef[] = [
    { name: 'connect-close', title: `connect + close (${o.stormConns} in flight)`, mode: 'connect-close', conns: o.stormConns },
    { name: 'reqrep', title: `connect + 16 B req/rep + close (${o.stormConns} in flight)`, mode: 'reqrep', conns: o.stormConns },
    { name: 'echo100', title: 'echo 16 B, 100 connections', mode: 'echo', conns: 100 },
    { name: 'echo1000', title: 'echo 16 B, 1,000 connections', mode: 'echo', conns: 1000 },
    { name: 'idle', title: `idle memory, ${fmt(o.idleConns)} connections`, mode: 'idle', conns: o.idleConns },
    // Two loadgen threads make connections faster than most servers accept them: the
    // accept queue overflows, SYNs are dropped and clients retry after 1 s. Shows
    // whether a server keeps up with a storm or collapses into retransmits.
    {
      name: 'storm-overload',
      title: `connect + close, 2 loadgen threads (overload, ${o.stormConns} in flight each)`,
      mode: 'connect-close',
      conns: o.stormConns * 2,
      threads: 2,
    },
  ];
  return all.filter((d) => o.only.includes(d.name));
}

interface Measurement {
  scenario: ScenarioName;
  server: ServerKind;
  round: number;
  ok: boolean;
  error?: string;
  metrics: Record<string, number>;
  errorCounts: Record<string, number>;
  loadgen: JsonObject[];
  serverStats: JsonObject[];
}

/** Busy CPU seconds of the whole machine so far (all CPUs), from /proc/stat. */
function machineBusySeconds(): number {
  try {
    const first = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = first.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = f[0] + f[1] + f[2] + f[5] + f[6];
    return busy / 100; // USER_HZ
  } catch {
    return NaN;
  }
}

/** Waits (bounded) until the machine is nearly idle: the suite's own children are all stopped here. */
async function waitForQuiet(maxSeconds: number): Promise<void> {
  const deadline = Date.now() + maxSeconds * 1000;
  while (Date.now() < deadline) {
    const b0 = machineBusySeconds();
    const t0 = Date.now();
    await sleep(300);
    const busyPct = ((machineBusySeconds() - b0) / ((Date.now() - t0) / 1000)) * 100;
    if (!(busyPct > NOISY_PCT)) return;
    await sleep(700);
  }
}

function cpuMicros(s: JsonObject | undefined): number {
  return num(s, 'cpuUser') + num(s, 'cpuSystem');
}

function collectErrors(into: Record<string, number>, lg: JsonObject): void {
  const e = lg.errors;
  if (!isObject(e)) return;
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === 'number' && k !== 'total' && k !== 'last_errno' && v > 0) into[k] = (into[k] ?? 0) + v;
  }
}

async function runTimed(def: ScenarioDef, server: RunningServer, p: Paths, o: Options, m: Measurement): Promise<void> {
  const before = await server.child.request('stats', 'stats');
  m.serverStats.push(before);
  const setup = 10;
  const args = loadgenArgs(def.mode, server.port, {
    '-c': def.conns,
    '-d': o.duration,
    '-w': o.warmup,
    '-t': def.threads ?? o.loadgenThreads,
    '-n': o.srcAddrs,
    '-s': 16,
    '-T': 3000,
    '-S': setup,
  });
  const busy0 = machineBusySeconds();
  const self0 = process.cpuUsage();
  const lg = await runLoadgen(p, args, (o.warmup + o.duration + setup + 20) * 1000);
  const self1 = process.cpuUsage(self0);
  const busy1 = machineBusySeconds();
  m.loadgen.push(lg);
  const after = await server.child.request('stats', 'stats');
  m.serverStats.push(after);
  collectErrors(m.errorCounts, lg);

  const completedAll = num(lg, 'completed_all');
  const wall = num(lg, 'wall_s');
  const cpu = cpuMicros(after) - cpuMicros(before);
  m.metrics.rate = num(lg, 'rate');
  m.metrics.p50 = num(lg, 'latency_us.p50');
  m.metrics.p99 = num(lg, 'latency_us.p99');
  m.metrics.cpuPerOp = completedAll > 0 ? cpu / completedAll : NaN;
  m.metrics.serverCpuPct = wall > 0 ? (cpu / (wall * 1e6)) * 100 : NaN;
  m.metrics.loadgenCpuPct = wall > 0 ? ((num(lg, 'cpu.user_s') + num(lg, 'cpu.sys_s')) / wall) * 100 : NaN;
  m.metrics.acceptedPerSec = wall > 0 ? (num(after, 'accepted') - num(before, 'accepted')) / wall : NaN;
  m.metrics.errors = num(lg, 'errors.total');
  const served = num(lg, 'all_served_ms');
  if (def.mode === 'echo') m.metrics.allServedMs = served >= 0 ? served : NaN;
  // CPU used by anything else on the machine during the run (other jobs make the numbers noisy)
  const ours = cpu / 1e6 + num(lg, 'cpu.user_s') + num(lg, 'cpu.sys_s') + (self1.user + self1.system) / 1e6;
  m.metrics.foreignCpuPct = wall > 0 ? Math.max(0, ((busy1 - busy0 - ours) / wall) * 100) : NaN;
  m.ok = m.metrics.rate > 0;
  if (!m.ok) m.error = `no completed operations (${JSON.stringify(lg.errors)})`;
}

async function waitForConns(server: RunningServer, pred: (conns: number) => boolean, timeoutMs: number): Promise<JsonObject> {
  const deadline = Date.now() + timeoutMs;
  let last = await server.child.request('stats', 'stats');
  while (!pred(num(last, 'conns')) && Date.now() < deadline) {
    await sleep(100);
    last = await server.child.request('stats', 'stats');
  }
  return last;
}

async function runIdle(def: ScenarioDef, server: RunningServer, p: Paths, o: Options, m: Measurement): Promise<void> {
  // Warm-up: a second of connect + close first, so the baseline already
  // includes what any server pays once (code paged in on first use, fixed
  // buffers first touched), and the delta is what each connection costs.
  const warm = new Child('loadgen-warmup', p.loadgen, loadgenArgs('connect-close', server.port, { '-c': 64, '-d': 1, '-w': 0, '-n': o.srcAddrs }));
  try {
    await warm.next((x) => typeof x.mode === 'string', 15000, 'warm-up result');
  } finally {
    if (warm.running) warm.kill('SIGKILL');
  }
  await waitForConns(server, (c) => c === 0, 10000);
  await server.child.request('gc', 'gc');
  await sleep(100);
  const base = await server.child.request('stats', 'stats');
  m.serverStats.push(base);

  // Split the clients so no loadgen process comes near the 20,000 descriptor limit.
  const procs = Math.max(1, Math.ceil(def.conns / o.idlePerProcess));
  const holdMax = 120;
  const lgs: Child[] = [];
  try {
    for (let i = 0; i < procs; i++) {
      const n = Math.floor(def.conns / procs) + (i < def.conns % procs ? 1 : 0);
      const args = loadgenArgs('idle', server.port, { '-c': n, '-d': holdMax, '-S': 30, '-i': 256, '-n': o.srcAddrs, '-T': 5000 });
      lgs.push(new Child(`loadgen-idle-${i}`, p.loadgen, args));
    }
    const readies = await Promise.all(lgs.map((lg) => lg.next((x) => x.event === 'ready', 45000, 'ready line')));
    const connected = readies.reduce((s, r) => s + num(r, 'connected'), 0);
    m.metrics.connectMs = Math.max(...readies.map((r) => num(r, 'connect_ms')));
    // Connections the kernel completed may still sit in the accept queue: wait
    // until the server has taken them all.
    const seen = await waitForConns(server, (c) => c >= connected, 20000);
    await sleep(300);
    await server.child.request('gc', 'gc');
    await sleep(100);
    const loaded = await server.child.request('stats', 'stats');
    m.serverStats.push(loaded);
    const conns = num(loaded, 'conns');
    m.metrics.conns = conns;
    m.metrics.rssBase = num(base, 'rss');
    m.metrics.rssLoaded = num(loaded, 'rss');
    m.metrics.bytesPerConn = conns > 0 ? (num(loaded, 'rss') - num(base, 'rss')) / conns : NaN;
    m.metrics.heapPerConn = conns > 0 ? (num(loaded, 'heapUsed') - num(base, 'heapUsed')) / conns : NaN;
    m.metrics.failed = def.conns - connected;
    if (num(seen, 'conns') < connected) m.error = `server saw ${num(seen, 'conns')} of ${connected} connections`;

    for (const lg of lgs) {
      lg.send('q');
      lg.proc.stdin.end();
    }
    const finals = await Promise.all(lgs.map((lg) => lg.next((x) => typeof x.mode === 'string', 20000, 'result line')));
    for (const f of finals) {
      m.loadgen.push(f);
      collectErrors(m.errorCounts, f);
    }
    m.metrics.dropped = finals.reduce((s, f) => s + num(f, 'dropped'), 0);
    m.metrics.errors = m.metrics.failed + m.metrics.dropped;
    // And after the clients left: does the memory come back?
    await waitForConns(server, (c) => c === 0, 10000);
    await server.child.request('gc', 'gc');
    await sleep(100);
    const released = await server.child.request('stats', 'stats');
    m.serverStats.push(released);
    m.metrics.rssAfterClose = num(released, 'rss');
    m.ok = conns > 0 && Number.isFinite(m.metrics.bytesPerConn);
  } finally {
    for (const lg of lgs) {
      if (lg.running) {
        lg.kill('SIGTERM');
        if (!(await exitsWithin(lg, 2000))) lg.kill('SIGKILL');
      }
    }
  }
}

async function measure(def: ScenarioDef, kind: ServerKind, round: number, p: Paths, o: Options): Promise<Measurement> {
  const m: Measurement = {
    scenario: def.name,
    server: kind,
    round,
    ok: false,
    metrics: {},
    errorCounts: {},
    loadgen: [],
    serverStats: [],
  };
  let server: RunningServer | undefined;
  try {
    server = await startServer(kind, p, o);
    if (def.mode === 'idle') await runIdle(def, server, p, o, m);
    else await runTimed(def, server, p, o, m);
  } catch (err) {
    m.ok = false;
    m.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (server !== undefined) {
      if (!server.child.running) m.error = (m.error ?? '') + ` (server exited${server.child.stderr()})`;
      await server.child.stop();
    }
  }
  return m;
}

async function measureWhenQuiet(def: ScenarioDef, kind: ServerKind, round: number, p: Paths, o: Options): Promise<Measurement> {
  if (o.waitQuiet > 0) await waitForQuiet(o.waitQuiet);
  return measure(def, kind, round, p, o);
}

// ---------------------------------------------------------------- report

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

interface RowDef {
  scenario: ScenarioName;
  metric: string;
  label: string;
  decimals: number;
  ratio: boolean;
}

function rowDefs(defs: ScenarioDef[]): Array<RowDef | string> {
  const rows: Array<RowDef | string> = [];
  for (const d of defs) {
    rows.push(d.title);
    switch (d.mode) {
      case 'connect-close':
      case 'reqrep':
        rows.push({ scenario: d.name, metric: 'rate', label: 'connections/s (higher is better)', decimals: 0, ratio: true });
        rows.push({ scenario: d.name, metric: 'cpuPerOp', label: 'server CPU us/connection (lower)', decimals: 1, ratio: true });
        rows.push({ scenario: d.name, metric: 'p99', label: 'p99 connect-to-done latency, us', decimals: 0, ratio: false });
        rows.push({ scenario: d.name, metric: 'cpuSplit', label: 'CPU % server / loadgen (100 = 1 core)', decimals: 0, ratio: false });
        break;
      case 'echo':
        rows.push({ scenario: d.name, metric: 'rate', label: 'messages/s (higher is better)', decimals: 0, ratio: true });
        rows.push({ scenario: d.name, metric: 'p50', label: 'p50 round trip, us (lower)', decimals: 0, ratio: true });
        rows.push({ scenario: d.name, metric: 'p99', label: 'p99 round trip, us (lower)', decimals: 0, ratio: true });
        rows.push({ scenario: d.name, metric: 'cpuPerOp', label: 'server CPU us/message (lower)', decimals: 2, ratio: true });
        rows.push({ scenario: d.name, metric: 'allServedMs', label: 'ms until every connection had an echo', decimals: 0, ratio: false });
        rows.push({ scenario: d.name, metric: 'cpuSplit', label: 'CPU % server / loadgen (100 = 1 core)', decimals: 0, ratio: false });
        break;
      case 'idle':
        rows.push({ scenario: d.name, metric: 'bytesPerConn', label: 'server RSS bytes/connection (lower)', decimals: 0, ratio: true });
        rows.push({ scenario: d.name, metric: 'rssBase', label: 'server RSS before, MiB', decimals: 1, ratio: false });
        rows.push({ scenario: d.name, metric: 'rssLoaded', label: 'server RSS holding them, MiB', decimals: 1, ratio: false });
        rows.push({ scenario: d.name, metric: 'rssAfterClose', label: 'server RSS after all closed, MiB', decimals: 1, ratio: false });
        break;
    }
  }
  return rows;
}

/** A run where other processes took more than this share of one core is flagged as noisy. */
const NOISY_PCT = 25;

type Summary = Record<string, Record<string, Record<string, number>>>;

function summarize(results: Measurement[]): Summary {
  const s: Summary = {};
  for (const r of results) {
    const byServer = (s[r.scenario] ??= {});
    byServer[r.server] ??= {};
  }
  for (const scenario of Object.keys(s)) {
    for (const server of Object.keys(s[scenario])) {
      const runs = results.filter((r) => r.scenario === scenario && r.server === server && r.ok);
      const keys = new Set<string>();
      for (const r of runs) for (const k of Object.keys(r.metrics)) keys.add(k);
      const out: Record<string, number> = { runs: runs.length };
      for (const k of keys) out[k] = median(runs.map((r) => r.metrics[k]));
      s[scenario][server] = out;
    }
  }
  return s;
}

function formatNumber(v: number, decimals: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function renderTable(summary: Summary, defs: ScenarioDef[], servers: ServerKind[]): string {
  const header = ['scenario / metric', ...servers.map((k) => SERVER_LABEL[k])];
  const lines: string[][] = [];
  for (const row of rowDefs(defs)) {
    if (typeof row === 'string') {
      lines.push([row, ...servers.map(() => '')]);
      continue;
    }
    const base = summary[row.scenario]?.net?.[row.metric];
    const cells = servers.map((k) => {
      if (row.metric === 'cpuSplit') {
        const sv = summary[row.scenario]?.[k]?.serverCpuPct;
        const lv = summary[row.scenario]?.[k]?.loadgenCpuPct;
        return sv === undefined || lv === undefined ? 'n/a' : `${formatNumber(sv, 0)} / ${formatNumber(lv, 0)}`;
      }
      let v = summary[row.scenario]?.[k]?.[row.metric];
      if (v === undefined) return 'n/a';
      let decimals = row.decimals;
      if (row.metric === 'rssBase' || row.metric === 'rssLoaded' || row.metric === 'rssAfterClose') {
        v = v / (1024 * 1024);
        decimals = 1;
      }
      let text = formatNumber(v, decimals);
      if (row.ratio && k !== 'net' && base !== undefined && Number.isFinite(base) && base > 0 && Number.isFinite(v)) {
        const raw = summary[row.scenario]?.[k]?.[row.metric] ?? NaN;
        text += ` (${(raw / base).toFixed(2)}x)`;
      }
      return text;
    });
    lines.push([`  ${row.label}`, ...cells]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmtLine = (cols: string[]): string =>
    cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ');
  const out = [fmtLine(header), widths.map((w) => '-'.repeat(w)).join('-+-')];
  for (const l of lines) out.push(fmtLine(l));
  return out.join('\n');
}

function describeMachine(): JsonObject {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const p = findPaths();
  buildTools(p);
  if (o.buildOnly) {
    process.stdout.write(`built ${p.loadgen} and ${p.cserver}\n`);
    return;
  }

  const skipped: string[] = [];
  const apBuilt = fs.existsSync(p.acceptpoolIndex) && fs.existsSync(p.acceptpoolAddon);
  let servers = o.servers.filter((k) => {
    if ((k === 'inline' || k === 'threaded') && !apBuilt) {
      skipped.push(`${SERVER_LABEL[k]}: not built (need ${path.relative(p.root, p.acceptpoolIndex)} and ${path.relative(p.root, p.acceptpoolAddon)})`);
      return false;
    }
    return true;
  });
  // A server that cannot even start is left out of the rest of the run.
  for (const k of [...servers]) {
    try {
      const s = await startServer(k, p, o);
      await s.child.stop();
    } catch (err) {
      skipped.push(`${SERVER_LABEL[k]}: does not start: ${err instanceof Error ? err.message : String(err)}`);
      servers = servers.filter((x) => x !== k);
    }
  }
  if (servers.length === 0) throw new Error(`no server to measure: ${skipped.join('; ')}`);

  const defs = scenarioDefs(o);
  const machine = describeMachine();
  process.stderr.write(
    `acceptpool benchmarks: ${String(machine.cpus)} CPUs (${String(machine.cpuModel)}), ${String(machine.kernel)}, node ${process.version}\n` +
      `servers: ${servers.map((k) => SERVER_LABEL[k]).join(', ')}; scenarios: ${defs.map((d) => d.name).join(', ')}; ` +
      `${o.rounds} round(s), ${o.duration} s measured + ${o.warmup} s warm-up per run\n`,
  );
  for (const s of skipped) process.stderr.write(`skipped ${s}\n`);
  const load1 = os.loadavg()[0];
  if (load1 > 0.5) process.stderr.write(`warning: load average ${load1.toFixed(2)} before the run; results may be noisy\n`);

  const started = Date.now();
  const results: Measurement[] = [];
  for (const def of defs) {
    for (let round = 1; round <= o.rounds; round++) {
      // rotate the order each round so no server always runs first or last
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]);
      for (const kind of order) {
        if (interrupted) return;
        let m = await measureWhenQuiet(def, kind, round, p, o);
        for (let retry = 0; retry < o.retryNoisy && (m.metrics.foreignCpuPct ?? 0) > NOISY_PCT; retry++) {
          if (interrupted) return;
          process.stderr.write(`  (other processes used ${formatNumber(m.metrics.foreignCpuPct, 0)}% CPU: measuring again)\n`);
          const again = await measureWhenQuiet(def, kind, round, p, o);
          if (again.ok && (!m.ok || (again.metrics.foreignCpuPct ?? 0) < (m.metrics.foreignCpuPct ?? 0))) m = again;
        }
        if (interrupted) return;
        results.push(m);
        const main = def.mode === 'idle' ? m.metrics.bytesPerConn : m.metrics.rate;
        const unit = def.mode === 'idle' ? 'B/conn' : def.mode === 'echo' ? 'msg/s' : 'conn/s';
        const errs = Object.entries(m.errorCounts).map(([k, v]) => `${k}=${v}`).join(' ');
        process.stderr.write(
          `[${def.name} ${round}/${o.rounds}] ${SERVER_LABEL[kind].padEnd(20)} ` +
            (m.ok ? `${formatNumber(main ?? NaN, 0)} ${unit}` : 'FAILED') +
            (errs.length > 0 ? ` errors: ${errs}` : '') +
            ((m.metrics.foreignCpuPct ?? 0) > NOISY_PCT ? ` [noisy: other processes used ${formatNumber(m.metrics.foreignCpuPct, 0)}% CPU]` : '') +
            (m.error !== undefined ? ` (${m.error})` : '') +
            '\n',
        );
        await sleep(o.settleMs);
      }
    }
  }
  const elapsed = (Date.now() - started) / 1000;
  const summary = summarize(results);

  const out: string[] = [];
  out.push('');
  out.push(
    `acceptpool benchmarks (${String(machine.cpus)} CPUs, ${String(machine.kernel)}, node ${process.version}): ` +
      `median of ${o.rounds} round(s), ${o.duration} s each; ratios vs node:net in the same run; ${elapsed.toFixed(0)} s total`,
  );
  out.push('loadgen and server share the machine\'s CPUs; server CPU is per operation, all of its threads');
  out.push('');
  out.push(renderTable(summary, defs, servers));
  out.push('');
  out.push('notes: with one loadgen thread the storm rates are often bounded by the loadgen (its CPU near 100),');
  out.push('  and a server that sleeps between connections costs the loadgen a wakeup each: compare servers there');
  out.push('  by server CPU per connection. Echo is measured once every connection has had an echo back.');
  const errorNotes: string[] = [];
  for (const def of defs) {
    for (const k of servers) {
      const runs = results.filter((r) => r.scenario === def.name && r.server === k);
      const failed = runs.filter((r) => !r.ok).length;
      const counts: Record<string, number> = {};
      for (const r of runs) for (const [e, v] of Object.entries(r.errorCounts)) counts[e] = (counts[e] ?? 0) + v;
      const text = Object.entries(counts).map(([e, v]) => `${e}=${v}`).join(' ');
      const firstError = runs.find((r) => r.error !== undefined)?.error;
      if (failed > 0 || text.length > 0 || firstError !== undefined) {
        errorNotes.push(
          `  ${def.name} / ${SERVER_LABEL[k]}: ${failed > 0 ? `${failed} of ${runs.length} runs failed; ` : ''}` +
            `${text.length > 0 ? `client errors ${text}` : ''}${firstError !== undefined ? `; ${firstError.slice(0, 300)}` : ''}`,
        );
      }
    }
  }
  const noisy = results.filter((r) => (r.metrics.foreignCpuPct ?? 0) > NOISY_PCT);
  if (noisy.length > 0) {
    out.push('');
    out.push(
      `warning: in ${noisy.length} of ${results.length} runs other processes used more than ${NOISY_PCT}% of a core ` +
        `(max ${formatNumber(Math.max(...noisy.map((r) => r.metrics.foreignCpuPct)), 0)}%); rerun on a quiet machine`,
    );
  }
  if (errorNotes.length > 0) {
    out.push('');
    out.push('errors (summed over rounds; warm-up included):');
    out.push(...errorNotes);
  }
  if (skipped.length > 0) {
    out.push('');
    for (const s of skipped) out.push(`skipped ${s}`);
  }
  process.stdout.write(out.join('\n') + '\n');

  if (o.json !== undefined) {
    const doc = {
      machine,
      options: { ...o },
      servers,
      skipped,
      elapsedSeconds: elapsed,
      summary,
      runs: results,
    };
    fs.mkdirSync(path.dirname(path.resolve(o.json)), { recursive: true });
    fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
    process.stderr.write(`wrote ${o.json}\n`);
  }
}

let interrupted = false;
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  process.stderr.write(`\n${signal}: stopping all benchmark processes\n`);
  killAllChildren('SIGTERM');
  setTimeout(() => {
    killAllChildren('SIGKILL');
    process.exit(130);
  }, 500).unref();
}
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('exit', () => killAllChildren('SIGKILL'));

main().then(
  () => {
    killAllChildren('SIGKILL');
  },
  (err: unknown) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllChildren('SIGKILL');
    process.exitCode = 1;
  },
);
