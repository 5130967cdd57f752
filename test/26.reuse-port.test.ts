/**
 * reusePort: several worker_threads, each with a server of its own on one
 * port (the README's recipe). The kernel spreads new connections over them;
 * when one goes away the others keep serving.
 */
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

import type { Driver } from '../src/index';
import { DRIVERS, cleanup, connect, fixturePath, reader, withTimeout } from './helpers';

interface WorkerMessage {
  type: 'listening' | 'closed' | 'error';
  port?: number;
  served?: number;
  message?: string;
}

/** A worker running fixtures/reuse-port-worker with its messages in order. */
class PortWorker {
  readonly worker: Worker;
  private readonly messages: WorkerMessage[] = [];
  private readonly exited: Promise<number>;

  constructor(name: string, port: number, driver: Driver) {
    this.worker = new Worker(fixturePath('reuse-port-worker'), { workerData: { name, port, driver } });
    this.worker.on('message', (m: WorkerMessage) => this.messages.push(m));
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
  }

  async next(type: WorkerMessage['type']): Promise<WorkerMessage> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const error = this.messages.find((m) => m.type === 'error');
      if (error !== undefined) throw new Error(`worker failed: ${String(error.message)}`);
      const m = this.messages.find((x) => x.type === type);
      if (m !== undefined) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for '${type}' from a worker`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Closes the worker's server and waits for the worker to end; resolves with what it served. */
  async close(): Promise<number> {
    this.worker.postMessage('close');
    const closed = await this.next('closed');
    await withTimeout(this.exited, 10_000, 'worker exit');
    return closed.served ?? -1;
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** Connects `n` clients one after another; resolves with the name each was greeted with. */
async function greetings(port: number, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const socket = await connect(port);
    const r = reader(socket);
    await r.waitEnd();
    names.push(r.text());
    socket.destroy();
  }
  return names;
}

if (process.platform === 'linux') {
  for (const driver of DRIVERS) {
    describe(`reusePort: one server per worker thread on one port (${driver} driver)`, function () {
      this.timeout(60_000);
      const workers: PortWorker[] = [];
      afterEach(async () => {
        await Promise.all(workers.splice(0).map((w) => w.terminate()));
        await cleanup();
      });

      it('both workers accept; once one exits the other serves every new connection', async () => {
        const a = new PortWorker('A', 0, driver);
        workers.push(a);
        const port = (await a.next('listening')).port ?? 0;
        const b = new PortWorker('B', port, driver);
        workers.push(b);
        assert.equal((await b.next('listening')).port, port);

        // Each connection comes from its own source port, which the kernel
        // hashes to one listener: 40 all landing on one has odds 2^-39.
        const first = await greetings(port, 40);
        assert.ok(
          first.every((n) => n === 'A' || n === 'B'),
          `unexpected greetings ${first.join(',')}`,
        );
        assert.ok(first.includes('A') && first.includes('B'), `one worker took every connection: ${first.join('')}`);

        const servedByA = await a.close();
        assert.equal(servedByA, first.filter((n) => n === 'A').length);
        const after = await greetings(port, 20);
        assert.deepEqual(
          after,
          Array.from({ length: 20 }, () => 'B'),
          'a connection was lost after A exited',
        );
        assert.equal(await b.close(), first.filter((n) => n === 'B').length + 20);
      });
    });
  }
}
