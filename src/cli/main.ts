#!/usr/bin/env node
/**
 * The `acceptpool` command:
 *   acceptpool bench [options]   acceptpool, node:net and a C server, side by side
 *   acceptpool serve [options]   a server with live stats
 * Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describeOptions, parseArgs, UsageError } from './args';
import type { OptionSpec } from './args';
import { Bench, BenchAborted, DEFAULT_SCENARIOS, packageVersion, SCENARIO_IDS } from './bench';
import type { BenchOptions, ScenarioId } from './bench';
import { stopAllChildren } from './children';
import { NOISY_PCT } from './machine';
import { formatMarkdown, formatReport, renderSvg } from './report';
import { serve, SERVE_USAGE } from './serve';
import { DEFAULT_BACKLOG, DEFAULT_SERVERS, SERVERS, isAcceptpool, onBackend } from './servers';
import type { ServerName } from './servers';
import { binding } from '../native';
import { LOAD_OPTION_RANGES, backends, defaultBackend } from '../options';
import type { BackendName } from '../options';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;
// Both ends of every idle connection live under the descriptor limit of a
// process (RLIMIT_NOFILE, which the server's child inherits): the generator
// here, the server in its child. A tenth stays for what else they open.
const MAX_IDLE = maxIdle(binding.descriptorLimit());

function maxIdle(descriptors: number | null): number {
  // No limit (Windows): as many as the load generator holds.
  if (descriptors === null) return LOAD_OPTION_RANGES.connections[1];
  return Math.max(100, Math.floor(descriptors * 0.9));
}

const BENCH_SPECS: readonly OptionSpec[] = [
  { name: 'quick', kind: 'flag', help: 'a short run (about 30 s): 2 rounds of 1 s runs, 5,000 idle connections' },
  {
    name: 'servers',
    kind: 'list',
    choices: [...SERVERS.keys()],
    help:
      `servers side by side (default ${DEFAULT_SERVERS.join(',')}): threaded, inline (acceptpool's drivers), ` +
      'threaded2 (two I/O threads, a listener each), threaded2-shared (two I/O threads, one listener), ' +
      'node (node:net, what every ratio is against), c (a minimal C epoll server, compiled here with cc)',
  },
  {
    name: 'backends',
    kind: 'list',
    choices: backends(),
    help:
      `run every acceptpool server once per backend listed (this build has ${backends().join(', ')}; ` +
      `default: the platform's, ${defaultBackend()}), each beside node:net in the same run`,
  },
  { name: 'rounds', kind: 'integer', min: 1, max: 100, value: 'N', help: 'rounds per scenario and server (default 3)' },
  { name: 'duration', kind: 'number', min: 0.1, max: 3600, value: 'S', help: 'measured seconds per run (default 3)' },
  { name: 'warmup', kind: 'number', min: 0, max: 600, value: 'S', help: 'seconds of load before each measurement (default 0.5)' },
  { name: 'connections', kind: 'integer', min: 1, max: 10000, value: 'N', help: 'connects in flight in the storms (default 64)' },
  {
    name: 'backlog',
    kind: 'integer',
    min: 1,
    max: 65535,
    value: 'N',
    help: `listen backlog of every server (default ${DEFAULT_BACKLOG}, the library's)`,
  },
  {
    name: 'idle',
    kind: 'integer',
    min: 100,
    max: MAX_IDLE,
    value: 'N',
    help: 'connections held in the idle-memory scenario (default 10,000)',
  },
  { name: 'threads', kind: 'integer', min: 1, max: 64, value: 'N', help: 'load generator threads (default 1)' },
  { name: 'sources', kind: 'integer', min: 1, max: 254, value: 'N', help: 'source addresses 127.0.0.1..N for the generator (default 8)' },
  {
    name: 'only',
    kind: 'list',
    choices: SCENARIO_IDS,
    help: `scenarios to run (default ${DEFAULT_SCENARIOS.join(', ')}; also ${SCENARIO_IDS.filter((id) => !DEFAULT_SCENARIOS.includes(id)).join(', ')})`,
  },
  {
    name: 'wait-quiet',
    kind: 'number',
    min: 0,
    max: 600,
    value: 'S',
    help: 'before each run, wait up to S s for other processes to leave the CPUs (default 0)',
  },
  {
    name: 'retry-noisy',
    kind: 'integer',
    min: 0,
    max: 5,
    value: 'N',
    help: `measure a run again, up to N times, when other processes used more than ${NOISY_PCT}% of a core during it (default 0)`,
  },
  { name: 'json', kind: 'string', value: 'FILE', help: 'also write the results as JSON' },
  { name: 'markdown', kind: 'string', value: 'FILE', help: 'also write the table as Markdown, with the command, date and machine' },
  { name: 'svg', kind: 'string', value: 'FILE', help: 'also draw the ratios as an SVG bar chart' },
  { name: 'no-progress', kind: 'flag', help: 'no progress output on stderr' },
  { name: 'help', kind: 'flag', help: 'show this help' },
];

const BENCH_USAGE = `usage: acceptpool bench [options]

Runs servers (acceptpool, node:net, a minimal C epoll server; each in its
own process) side by side against acceptpool's native load generator on
loopback, in rounds that rotate which goes first: connect + close, connect +
request/reply + close, echo at 100 and 1,000 connections, idle RSS per
connection, and a check that the native generator out-drives a node:net
client. Reports medians, spreads and ratios against node:net, and how busy
other processes kept the machine.

${describeOptions(BENCH_SPECS)}
`;

const USAGE = `usage: acceptpool <command> [options]

commands:
  bench    acceptpool, node:net and C servers side by side (try: acceptpool bench --quick)
  serve    an acceptpool echo, discard or close server with live stats

acceptpool <command> --help shows a command's options; acceptpool --version the version.
`;

/** Checks that a file can be written there, before a long run. */
function writableTarget(option: string, file: string): string {
  const resolved = path.resolve(file);
  const dir = path.dirname(resolved);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new UsageError(`--${option}: cannot write into ${dir}`);
  }
  if (fs.existsSync(resolved) && fs.statSync(resolved).isDirectory()) throw new UsageError(`--${option}: ${resolved} is a directory`);
  return resolved;
}

interface BenchCall {
  options: BenchOptions;
  outputs: { json?: string; markdown?: string; svg?: string };
}

/** With --backends, each acceptpool server once per backend, in that order (node:net and C as they are). */
function perBackend(servers: readonly ServerName[], list: readonly BackendName[] | undefined): ServerName[] {
  if (list === undefined) return [...servers];
  return servers.flatMap((name) => (isAcceptpool(name) ? list.map((b) => onBackend(name, b)) : [name]));
}

function benchOptions(argv: readonly string[]): BenchCall | null {
  const args = parseArgs(argv, BENCH_SPECS);
  if (args.flag('help')) return null;
  const quick = args.flag('quick');
  const options: BenchOptions = {
    rounds: args.number('rounds', quick ? 2 : 3),
    durationMs: Math.round(args.number('duration', quick ? 1 : 3) * 1000),
    warmupMs: Math.round(args.number('warmup', quick ? 0.2 : 0.5) * 1000),
    connections: args.number('connections', 64),
    backlog: args.number('backlog', DEFAULT_BACKLOG),
    idleConnections: args.number('idle', quick ? 5000 : 10000),
    threads: args.number('threads', 1),
    sources: args.number('sources', 8),
    only: (args.list('only') ?? [...DEFAULT_SCENARIOS]) as ScenarioId[],
    servers: perBackend((args.list('servers') ?? [...DEFAULT_SERVERS]) as ServerName[], args.list('backends') as BackendName[] | undefined),
    waitQuietMs: Math.round(args.number('wait-quiet', 0) * 1000),
    retryNoisy: args.number('retry-noisy', 0),
    emitCalls: quick ? 1_000_000 : 2_000_000,
    progress: !args.flag('no-progress'),
  };
  const outputs: BenchCall['outputs'] = {};
  for (const name of ['json', 'markdown', 'svg'] as const) {
    const file = args.string(name);
    if (file !== undefined) outputs[name] = writableTarget(name, file);
  }
  return { options, outputs };
}

async function benchCommand(argv: readonly string[]): Promise<number> {
  const parsed = benchOptions(argv);
  if (parsed === null) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const bench = new Bench(parsed.options, ['acceptpool', 'bench', ...argv].join(' '));
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('\ninterrupted: stopping the servers and the load generator\n');
    bench.abort();
    // The run unwinds by itself; this bounds it if something hangs.
    void stopAllChildren().then(() => {
      setTimeout(() => process.exit(EXIT_INTERRUPTED), 3000).unref();
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await bench.run();
    process.stdout.write(formatReport(report));
    const { json, markdown, svg } = parsed.outputs;
    if (json !== undefined) fs.writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
    if (markdown !== undefined) fs.writeFileSync(markdown, formatMarkdown(report));
    if (svg !== undefined) fs.writeFileSync(svg, renderSvg(report));
    return 0;
  } catch (err) {
    if (err instanceof BenchAborted || interrupted) return EXIT_INTERRUPTED;
    throw err;
  } finally {
    await stopAllChildren();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bench':
      return benchCommand(rest);
    case 'serve':
      return serve(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(command === undefined ? USAGE : rest[0] === 'bench' ? BENCH_USAGE : rest[0] === 'serve' ? SERVE_USAGE : USAGE);
      return command === undefined ? EXIT_USAGE : 0;
    case '--version':
    case '-v':
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Nothing else should keep the process alive; exit even if something does.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      const command = process.argv[2];
      const hint = command === 'bench' || command === 'serve' ? `acceptpool ${command} --help` : 'acceptpool --help';
      process.stderr.write(`acceptpool: ${err.message}\n(see ${hint})\n`);
      process.exitCode = EXIT_USAGE;
    } else {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`acceptpool: ${message}\n`);
      process.exitCode = EXIT_FAILED;
    }
    void stopAllChildren().finally(() => process.exit(process.exitCode));
  },
);
