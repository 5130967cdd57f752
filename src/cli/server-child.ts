/**
 * A server of the table in ./servers in a process of its own, started by
 * `acceptpool bench`: `server-child.js <name> <mode> <backlog>
 * <max-lifetime-seconds>`. It speaks the control protocol of ./children:
 * announces { type: 'listening', port, engine } and answers
 *   stats -> rss, heap, CPU time (all threads), connections open / accepted, bytes
 *   gc    -> after a full collection (node runs with --expose-gc)
 */
import { reply, serveParent } from './children';
import { SERVE_MODES, serverEntry } from './servers';
import type { ServeMode, ServerName } from './servers';

async function main(): Promise<void> {
  const [name, mode, backlog, lifetime] = process.argv.slice(2);
  const start = serverEntry(name as ServerName).start;
  if (start === undefined) throw new Error(`no in-process server "${name}"`);
  if (!SERVE_MODES.includes(mode as ServeMode)) throw new Error(`no mode "${mode}"`);
  const server = await start({ mode: mode as ServeMode, host: '127.0.0.1', port: 0, backlog: Number(backlog) });
  serveParent(
    Number(lifetime) * 1000,
    (type) => {
      if (type === 'stats') {
        const mem = process.memoryUsage();
        const cpu = process.cpuUsage();
        return { rss: mem.rss, heapUsed: mem.heapUsed, cpuUs: cpu.user + cpu.system, ...server.counts() };
      }
      if (type === 'gc') {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        gc?.();
        return { exposed: gc !== undefined };
      }
      return undefined;
    },
    () => server.close(),
  );
  reply({ type: 'listening', port: server.port, engine: server.engine, pid: process.pid });
}

main().catch((err: unknown) => {
  process.stderr.write(`server-child: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
