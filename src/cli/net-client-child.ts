/**
 * The `node:net` client side of the load-generator check, in a process of
 * its own: `net-client-child.js <port> <connections> <durationMs> <warmupMs>`
 * (the control protocol of ./children).
 * The same connect + reset loop as the native generator's connect-close
 * mode (each connect, once established, is reset and replaced), written the
 * way a Node program would. Sends { type: 'result', rate, completed, total,
 * errors, cpuUs } and exits.
 */
import * as net from 'node:net';

import { reply, serveParent } from './children';

const RETRY_MS = 10;

function run(port: number, connections: number, durationMs: number, warmupMs: number): void {
  const cpu0 = process.cpuUsage();
  const start = Date.now();
  const measureFrom = start + warmupMs;
  const measureTo = measureFrom + durationMs;
  let completed = 0;
  let total = 0;
  let errors = 0;
  let stopping = false;
  let active = 0;
  let finished = false;

  const finish = (): void => {
    if (finished) return;
    finished = true;
    const cpu = process.cpuUsage(cpu0);
    const windowMs = Math.min(Date.now(), measureTo) - measureFrom;
    reply({
      type: 'result',
      rate: windowMs > 0 ? (completed * 1000) / windowMs : 0,
      completed,
      total,
      errors,
      windowMs,
      cpuUs: cpu.user + cpu.system,
    });
    setTimeout(() => process.exit(0), 50);
  };

  const lane = (): void => {
    if (stopping) {
      if (--active === 0) finish();
      return;
    }
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('connect', () => {
      const now = Date.now();
      total++;
      if (now >= measureFrom && now < measureTo) completed++;
      socket.resetAndDestroy();
      lane();
    });
    socket.once('error', () => {
      errors++;
      socket.destroy();
      setTimeout(lane, RETRY_MS);
    });
  };

  for (let i = 0; i < connections; i++) {
    active++;
    lane();
  }
  setTimeout(() => {
    stopping = true;
  }, measureTo - start);
  // Bounded even if some connect never settles.
  setTimeout(finish, measureTo - start + 5000).unref();
}

const [port, connections, durationMs, warmupMs] = process.argv.slice(2).map(Number);
serveParent(
  10 * 60 * 1000,
  () => undefined,
  () => undefined,
);
run(port, connections, durationMs, warmupMs);
