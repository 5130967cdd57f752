#!/usr/bin/env node
/**
 * The `acceptpool` command:
 *   acceptpool bench [options]   acceptpool vs node:net, side by side
 *   acceptpool serve [options]   a server with live stats
 * Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describeOptions, parseArgs, UsageError } from './args';
import type { OptionSpec } from './args';
import { Bench, BenchAborted, packageVersion, SCENARIOS } from './bench';
import type { BenchOptions, ScenarioId } from './bench';
import { stopAllChildren } from './children';
import { formatReport, renderSvg } from './report';
import { serve, SERVE_USAGE } from './serve';
import { DRIVERS } from './servers';
import { binding } from '../native';
import { LOAD_OPTION_RANGES } from '../options';
import type { Driver } from '../options';

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
  { name: 'rounds', kind: 'integer', min: 1, max: 100, value: 'N', help: 'rounds per scenario and server (default 3)' },
  { name: 'duration', kind: 'number', min: 0.1, max: 3600, value: 'S', help: 'measured seconds per run (default 3)' },
  { name: 'warmup', kind: 'number', min: 0, max: 600, value: 'S', help: 'seconds of load before each measurement (default 0.5)' },
  { name: 'connections', kind: 'integer', min: 1, max: 10000, value: 'N', help: 'connects in flight in the storms (default 64)' },
  { name: 'backlog', kind: 'integer', min: 1, max: 65535, value: 'N', help: 'listen backlog of both servers (default 511)' },
  { name: 'idle', kind: 'integer', min: 100, max: MAX_IDLE, value: 'N', help: 'connections held in the idle-memory scenario (default 10,000)' },
  { name: 'threads', kind: 'integer', min: 1, max: 64, value: 'N', help: 'load generator threads (default 1)' },
  { name: 'sources', kind: 'integer', min: 1, max: 254, value: 'N', help: 'source addresses 127.0.0.1..N for the generator (default 8)' },
  { name: 'only', kind: 'list', choices: SCENARIOS, help: `scenarios to run (default all: ${SCENARIOS.join(', ')})` },
  { name: 'driver', kind: 'choice', choices: DRIVERS, help: "acceptpool server's driver (default: the library's)" },
  { name: 'json', kind: 'string', value: 'FILE', help: 'also write the results as JSON' },
  { name: 'svg', kind: 'string', value: 'FILE', help: 'also draw the ratios as an SVG bar chart' },
  { name: 'no-progress', kind: 'flag', help: 'no progress bar on stderr' },
  { name: 'help', kind: 'flag', help: 'show this help' },
];

const BENCH_USAGE = `usage: acceptpool bench [options]

Runs acceptpool and node:net servers (each in its own process) side by side
against acceptpool's native load generator on loopback, in alternating rounds:
connect + close, connect + request/reply + close, echo at 100 and 1,000
connections, idle RSS per connection, and a check that the native generator
out-drives a node:net client. Reports medians, min-max and ratios.

${describeOptions(BENCH_SPECS)}
`;

const USAGE = `usage: acceptpool <command> [options]

commands:
  bench    acceptpool vs node:net servers side by side (try: acceptpool bench --quick)
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

function benchOptions(argv: readonly string[]): { options: BenchOptions; json?: string; svg?: string } | null {
  const args = parseArgs(argv, BENCH_SPECS);
  if (args.flag('help')) return null;
  const quick = args.flag('quick');
  const only = (args.list('only') ?? [...SCENARIOS]) as ScenarioId[];
  const options: BenchOptions = {
    rounds: args.number('rounds', quick ? 2 : 3),
    durationMs: Math.round(args.number('duration', quick ? 1 : 3) * 1000),
    warmupMs: Math.round(args.number('warmup', quick ? 0.2 : 0.5) * 1000),
    connections: args.number('connections', 64),
    backlog: args.number('backlog', 511),
    idleConnections: args.number('idle', quick ? 5000 : 10000),
    threads: args.number('threads', 1),
    sources: args.number('sources', 8),
    only,
    progress: !args.flag('no-progress'),
  };
  const driver = args.string('driver');
  if (driver !== undefined) options.driver = driver as Driver;
  const json = args.string('json');
  const svg = args.string('svg');
  return {
    options,
    ...(json !== undefined ? { json: writableTarget('json', json) } : {}),
    ...(svg !== undefined ? { svg: writableTarget('svg', svg) } : {}),
  };
}

async function benchCommand(argv: readonly string[]): Promise<number> {
  const parsed = benchOptions(argv);
  if (parsed === null) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const bench = new Bench(parsed.options);
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
    if (parsed.json !== undefined) fs.writeFileSync(parsed.json, JSON.stringify(report, null, 2) + '\n');
    if (parsed.svg !== undefined) fs.writeFileSync(parsed.svg, renderSvg(report));
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
