// Control protocol shared by the Node benchmark servers (the C server speaks
// the same one): the server prints one JSON line {"event":"listening","port":N}
// on stdout once it listens, then answers lines on stdin:
//   stats -> {"event":"stats","rss":bytes,"cpuUser":us,"cpuSystem":us,"conns":n,"accepted":n,...}
//   gc    -> runs global.gc() when node was started with --expose-gc, then {"event":"gc"}
//   quit  -> closes the server and exits (so does EOF on stdin: the runner went away)
// A server also exits by itself after a maximum lifetime, so nothing outlives a run.

export interface Counts {
  conns: number;
  accepted: number;
  extra?: Record<string, unknown>;
}

export interface ControlOptions {
  counts: () => Counts;
  shutdown: () => Promise<void> | void;
  maxLifetimeMs?: number;
}

function writeLine(obj: Record<string, unknown>): void {
  const replacer = (_key: string, value: unknown): unknown => (typeof value === 'bigint' ? Number(value) : value);
  process.stdout.write(JSON.stringify(obj, replacer) + '\n');
}

export function announceListening(port: number, address: string, extra: Record<string, unknown> = {}): void {
  writeLine({ event: 'listening', port, address, pid: process.pid, ...extra });
}

export function serveControl(options: ControlOptions): void {
  let exiting = false;
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    const hard = setTimeout(() => process.exit(code), 2000);
    hard.unref();
    Promise.resolve()
      .then(() => options.shutdown())
      .catch((err: unknown) => process.stderr.write(`shutdown failed: ${String(err)}\n`))
      .finally(() => process.exit(code));
  };

  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      handle(line);
      nl = buffered.indexOf('\n');
    }
    if (buffered.length > 65536) buffered = '';
  });
  process.stdin.on('end', () => exit(0));
  process.stdin.on('error', () => exit(0));

  const handle = (line: string): void => {
    if (line === 'stats') {
      const mem = process.memoryUsage();
      const cpu = process.cpuUsage();
      const c = options.counts();
      writeLine({
        event: 'stats',
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        external: mem.external,
        arrayBuffers: mem.arrayBuffers,
        cpuUser: cpu.user,
        cpuSystem: cpu.system,
        conns: c.conns,
        accepted: c.accepted,
        ...(c.extra ?? {}),
      });
    } else if (line === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc) {
        gc();
        gc();
      }
      writeLine({ event: 'gc', exposed: gc !== undefined });
    } else if (line === 'quit') {
      exit(0);
    }
  };

  const lifetime = setTimeout(() => {
    process.stderr.write('benchmark server: maximum lifetime reached, exiting\n');
    exit(3);
  }, options.maxLifetimeMs ?? 30 * 60 * 1000);
  lifetime.unref();
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));
}

export interface ServerArgs {
  port: number;
  backlog: number;
  rest: string[];
}

// argv: [--port=N] [--backlog=N] [positional...]
export function parseServerArgs(argv: string[]): ServerArgs {
  let port = 0;
  let backlog = 1024;
  const rest: string[] = [];
  for (const a of argv) {
    const m = /^--(port|backlog)=(\d+)$/.exec(a);
    if (m) {
      if (m[1] === 'port') port = Number(m[2]);
      else backlog = Number(m[2]);
    } else {
      rest.push(a);
    }
  }
  return { port, backlog, rest };
}
