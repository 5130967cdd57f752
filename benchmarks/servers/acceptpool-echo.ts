// acceptpool echo server for the benchmarks.
// Usage: node acceptpool-echo.js inline|threaded [--port=0] [--backlog=1024]
// Loads the built package from dist/src/index.js (or $ACCEPTPOOL_MODULE) at run
// time, so the suite compiles and runs before the package exists.
import * as path from 'node:path';

import { announceListening, parseServerArgs, serveControl } from './control';

interface ApSession {
  readonly id: number;
  send(data: Buffer): unknown;
  close(): unknown;
}

interface ApAddress {
  address: string;
  family: string;
  port: number;
}

interface ApServer {
  on(event: 'session', listener: (session: ApSession) => void): unknown;
  on(event: 'data', listener: (session: ApSession, chunk: Buffer) => void): unknown;
  on(event: 'sessionClose', listener: (session: ApSession, reason: unknown) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  listen(port: number, host: string): Promise<ApAddress>;
  stats(): unknown;
  close(): Promise<void>;
}

interface ApServerOptions {
  driver?: 'inline' | 'threaded';
  backlog?: number;
  maxConnections?: number;
  poolSize?: number;
}

interface ApModule {
  createServer(options: ApServerOptions): ApServer;
}

function loadModule(): ApModule {
  const file = process.env.ACCEPTPOOL_MODULE ?? path.resolve(__dirname, '..', '..', 'src', 'index.js');
  const mod = require(file) as unknown;
  if (typeof mod !== 'object' || mod === null || typeof (mod as { createServer?: unknown }).createServer !== 'function') {
    throw new Error(`${file} does not export createServer()`);
  }
  return mod as ApModule;
}

async function main(): Promise<void> {
  const args = parseServerArgs(process.argv.slice(2));
  const driver = args.rest[0] ?? 'inline';
  if (driver !== 'inline' && driver !== 'threaded') throw new Error(`unknown driver ${driver}`);
  const maxConnections = Number(process.env.BENCH_MAX_CONNECTIONS ?? 19000);

  const ap = loadModule();
  const server = ap.createServer({ driver, backlog: args.backlog, maxConnections });
  let conns = 0;
  let accepted = 0;
  let sendFailures = 0;
  server.on('error', (err: Error) => {
    process.stderr.write(`acceptpool-echo: server error: ${err.message}\n`);
  });
  server.on('session', () => {
    conns++;
    accepted++;
  });
  server.on('data', (session: ApSession, chunk: Buffer) => {
    if (session.send(chunk) === false) sendFailures++;
  });
  server.on('sessionClose', () => {
    conns--;
  });

  const addr = await server.listen(args.port, '127.0.0.1');
  announceListening(addr.port, addr.address, { kind: `acceptpool-${driver}` });

  serveControl({
    counts: () => {
      let native: unknown;
      try {
        native = server.stats();
      } catch (err) {
        native = { error: String(err) };
      }
      return { conns, accepted, extra: { sendFailures, native } };
    },
    shutdown: () => server.close(),
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`acceptpool-echo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
