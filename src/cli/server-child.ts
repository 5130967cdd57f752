/**
 * A benchmark server in a process of its own (forked by `acceptpool bench`
 * with an IPC channel): `server-child.js <acceptpool|net> <mode> <backlog>
 * [driver]`. It announces { type: 'listening', port } and answers requests:
 *   stats -> rss, heap, CPU time (all threads), connections open / accepted
 *   gc    -> a full collection first (node runs with --expose-gc)
 * It exits when the parent goes away.
 */
import { exitWithParent, reply } from './children';
import type { ChildMessage } from './children';
import { startServer } from './servers';
import type { ServeMode, ServerImpl } from './servers';
import type { Driver } from '../options';

const MAX_LIFETIME_MS = 60 * 60 * 1000;

async function main(): Promise<void> {
  const [impl, mode, backlog, driver] = process.argv.slice(2);
  const server = await startServer(impl as ServerImpl, {
    mode: mode as ServeMode,
    host: '127.0.0.1',
    port: 0,
    backlog: Number(backlog),
    ...(driver !== undefined && driver !== '' ? { driver: driver as Driver } : {}),
  });
  exitWithParent(MAX_LIFETIME_MS, () => server.close());
  process.on('message', (m: ChildMessage) => {
    if (m.type === 'stats') {
      const mem = process.memoryUsage();
      const cpu = process.cpuUsage();
      reply({ type: 'stats', id: m.id, rss: mem.rss, heapUsed: mem.heapUsed, cpuUs: cpu.user + cpu.system, ...server.counts() });
    } else if (m.type === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      reply({ type: 'gc', id: m.id, exposed: gc !== undefined });
    }
  });
  reply({ type: 'listening', port: server.port, engine: server.engine, pid: process.pid });
}

main().catch((err: unknown) => {
  process.stderr.write(`server-child: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
