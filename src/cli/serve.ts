/**
 * `acceptpool serve`: an acceptpool server (echo, discard or close-on-accept)
 * printing live stats once a second, for pointing other tools at. Ctrl-C
 * closes it and exits 0.
 */
import { describeOptions, parseArgs, UsageError } from './args';
import type { OptionSpec } from './args';
import { DEFAULT_BACKLOG, DRIVERS, SERVE_MODES, startAcceptpool } from './servers';
import type { ServeMode, ServerCounts } from './servers';
import type { Driver } from '../options';

export const SERVE_SPECS: readonly OptionSpec[] = [
  {
    name: 'mode',
    kind: 'choice',
    choices: SERVE_MODES,
    help: 'echo (default), discard, close every connection at once, http (node:http hello world over handoff), or proxy-echo (echo behind a PROXY header from 127.0.0.0/8)',
  },
  { name: 'port', kind: 'integer', min: 0, max: 65535, value: 'N', help: 'port to listen on (default 7777; 0 = any free port)' },
  { name: 'host', kind: 'string', value: 'HOST', help: 'address or name to listen on (default 127.0.0.1)' },
  { name: 'driver', kind: 'choice', choices: DRIVERS, help: "how the engine is driven (default: the library's, threaded on Linux)" },
  { name: 'backlog', kind: 'integer', min: 1, max: 65535, value: 'N', help: `listen backlog (default ${DEFAULT_BACKLOG}, the library's)` },
  { name: 'help', kind: 'flag', help: 'show this help' },
];

export const SERVE_USAGE = `usage: acceptpool serve [options]

Runs an acceptpool server and prints its stats once a second; Ctrl-C stops it.

${describeOptions(SERVE_SPECS)}
`;

function rate(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB/s`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB/s`;
  return `${bytes} B/s`;
}

/** Runs until SIGINT/SIGTERM; resolves with the exit code. */
export async function serve(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, SERVE_SPECS);
  if (args.flag('help')) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const mode = (args.string('mode') ?? 'echo') as ServeMode;
  const host = args.string('host') ?? '127.0.0.1';
  const driver = args.string('driver') as Driver | undefined;
  const server = await startAcceptpool(
    { mode, host, port: args.number('port', 7777), backlog: args.number('backlog', DEFAULT_BACKLOG) },
    driver,
  ).catch((err: unknown) => {
    const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
    if (code === 'ERR_ACCEPTPOOL_INVALID_ARG') throw new UsageError(err instanceof Error ? err.message : String(err));
    throw err;
  });
  process.stdout.write(`acceptpool ${mode} server on ${server.address}:${server.port} (${server.engine}); Ctrl-C to stop\n`);
  let last: ServerCounts = server.counts();
  const timer = setInterval(() => {
    const c = server.counts();
    const time = new Date().toTimeString().slice(0, 8);
    process.stdout.write(
      `${time}  conns ${c.conns}  accepts/s ${c.accepted - last.accepted}  in ${rate(c.bytesIn - last.bytesIn)}  ` +
        `out ${rate(c.bytesOut - last.bytesOut)}  accepted ${c.accepted}\n`,
    );
    last = c;
  }, 1000);
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      clearInterval(timer);
      process.stdout.write('stopping\n');
      // Bounded: sessions that do not finish are reset by the server.
      const hard = setTimeout(() => resolve(0), 3000);
      void server.close().finally(() => {
        clearTimeout(hard);
        resolve(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
