/**
 * The Windows accept pool (IOCP backend): AcceptEx calls posted before any
 * client and refilled, growth under a burst larger than the posted count,
 * cancellation when the server closes, and socket recycling with
 * DisconnectEx(TF_REUSE_SOCKET): the attempt, the detection of a recycled
 * socket that is not really reusable, and the fallback to a fresh socket.
 *
 * Runs only on Windows (npm run test:win runs it in node.exe under Wine).
 * Under Wine 8 DisconnectEx(TF_REUSE_SOCKET) does not recycle (it only shuts
 * down the send side), so these tests prove the attempt and the fallback;
 * that a recycled socket really accepts again can only be seen on Windows.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';

import { createServer } from '../src/index';
import type { Server } from '../src/index';
import {
  blockJsThread,
  cleanup,
  connect,
  connectMany,
  connectNoWait,
  delay,
  randomBytes,
  reader,
  startEcho,
  startServer,
  track,
  waitFor,
} from './helpers';

const describeWindows = process.platform === 'win32' ? describe : describe.skip;

/** The IOCP counters of stats(). */
function iocp(server: Server): Record<string, number> {
  const counters = server.stats().backendCounters;
  assert.ok(counters !== undefined, 'stats().backendCounters is missing');
  return counters;
}

/** 'connected', or the error code of a connect to `port`. */
function connectOutcome(port: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

/** Runs `fn` with ACCEPTPOOL_IOCP_REUSE set (read when a server is created). */
async function withReuseMode<T>(mode: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.ACCEPTPOOL_IOCP_REUSE;
  process.env.ACCEPTPOOL_IOCP_REUSE = mode;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.ACCEPTPOOL_IOCP_REUSE;
    else process.env.ACCEPTPOOL_IOCP_REUSE = before;
  }
}

describeWindows('IOCP accept pool', function () {
  this.timeout(60_000);
  afterEach(cleanup);

  it('posts 32 AcceptEx calls at listen, before any client, on fresh overlapped sockets', async () => {
    const h = await startServer('threaded');
    const st = h.server.stats();
    assert.equal(st.backend, 'iocp');
    assert.equal(st.driver, 'threaded');
    const c = iocp(h.server);
    assert.equal(c.acceptsPending, 32);
    assert.equal(c.acceptTarget, 32);
    assert.equal(c.acceptsPosted, 32);
    assert.equal(c.freshSockets, 32);
  });

  it('refills each completed accept so 32 stay posted, and serves every client', async () => {
    const h = await startEcho('threaded');
    for (let i = 0; i < 10; i++) {
      const client = await connect(h.port);
      const r = reader(client);
      const msg = randomBytes(100);
      client.write(msg);
      assert.ok((await r.readExactly(100)).equals(msg), `client ${i} got a wrong echo`);
      client.destroy();
    }
    await waitFor(() => iocp(h.server).acceptsPosted === 42, 5_000, 'acceptsPosted 42');
    const c = iocp(h.server);
    assert.equal(c.acceptsPending, 32, 'the pool was not refilled');
    assert.equal(h.server.stats().accepts, 10);
  });

  it('grows the posted count under a burst of 300 connections while JS is blocked, up to maxConnections', async () => {
    const h = await startEcho('threaded', { maxConnections: 400 });
    // Connections start, then JS stops for a while: the I/O thread hands a
    // few batches over and waits, so accepted connections pile up and the
    // posted AcceptEx calls run out while clients keep arriving.
    const sockets = Array.from({ length: 300 }, () => connectNoWait(h.port));
    await new Promise<void>((resolve) => setImmediate(resolve));
    blockJsThread(1_500);
    await h.waitSessions(300, 20_000);
    const c = iocp(h.server);
    assert.ok(c.acceptGrowths > 0, `no growth: ${JSON.stringify(c)}`);
    assert.ok(c.acceptTarget > 32 && c.acceptTarget <= 400, `acceptTarget ${c.acceptTarget}`);
    // Every client is a working session.
    const readers = sockets.map((s) => reader(s));
    sockets.forEach((s, i) => s.write(`n${i};`));
    await Promise.all(readers.map((r, i) => r.readExactly(`n${i};`.length, 15_000)));
    readers.forEach((r, i) => assert.equal(r.text(), `n${i};`));
  });

  it('never posts more accepts than maxConnections', async () => {
    const h = await startServer('threaded', { maxConnections: 8 });
    const c = iocp(h.server);
    assert.equal(c.acceptTarget, 8);
    assert.equal(c.acceptsPending, 8);
  });

  it('cancels every posted accept when the server closes, and the port refuses clients afterwards', async () => {
    const server = track(createServer());
    const { port } = await server.listen(0, '127.0.0.1');
    assert.equal(iocp(server).acceptsPending, 32);
    await server.close();
    const c = server.stats().backendCounters ?? {};
    assert.equal(c.acceptsPending, 0, 'close() resolved with accepts still posted');
    assert.equal(c.acceptsCancelled, 32);
    assert.equal(c.socketsClosed, c.freshSockets, 'a socket of the pool was left open');
    assert.equal(await connectOutcome(port), 'ECONNREFUSED');
  });

  it('reports a session whose client reset before it was read as reset or remote, never loses it', async () => {
    const h = await startServer('threaded');
    const clients = await connectMany(h.port, 40);
    for (const c of clients) c.resetAndDestroy();
    await h.waitSessions(40);
    await h.waitCloses(40);
    for (const rec of h.closes) assert.ok(rec.reason === 'reset' || rec.reason === 'remote', rec.reason);
    await waitFor(() => h.server.stats().inUse === 0, 5_000, 'inUse 0');
  });
});

describeWindows('IOCP with threads: 2 (one listener, a completion port per thread)', function () {
  this.timeout(60_000);
  afterEach(cleanup);

  /** Each thread's IOCP counters. */
  function perThread(server: Server): Record<string, number>[] {
    return server.stats().perThread.map((t) => t.backendCounters ?? {});
  }

  it("each thread posts its own AcceptEx on the one listener; thread 0 sends thread 1's completions on to thread 1's port", async () => {
    const h = await startEcho('threaded', { threads: 2 });
    const before = perThread(h.server);
    assert.deepEqual(
      before.map((c) => c.acceptsPending),
      [32, 32],
    );
    assert.deepEqual(
      before.map((c) => c.acceptsForwarded),
      [0, 0],
    );
    const clients = await connectMany(h.port, 200, undefined, 50);
    await h.waitSessions(200);
    const st = h.server.stats();
    const c = perThread(h.server);
    assert.ok(st.perThread[0].accepts > 0 && st.perThread[1].accepts > 0, `split ${st.perThread.map((t) => t.accepts).join('/')}`);
    assert.equal(c[0].acceptsForwarded, st.perThread[1].accepts, "thread 1's accepts all came through thread 0's port");
    assert.equal(c[1].acceptsForwarded, 0, 'thread 1 received a completion of the listener itself');
    // Every session echoes on the thread that accepted it.
    const readers = clients.map((s) => reader(s));
    clients.forEach((s, i) => s.write(`m${i};`));
    await Promise.all(readers.map((r, i) => r.readExactly(`m${i};`.length, 15_000)));
    readers.forEach((r, i) => assert.equal(r.text(), `m${i};`));
    assert.ok(
      h.server.stats().perThread.every((t) => t.bytesOut > 0),
      'a thread sent nothing',
    );
  });

  it('close() cancels every accept of both threads, and the port refuses clients once the last handle is closed', async () => {
    const server = track(createServer({ threads: 2 }));
    const { port } = await server.listen(0, '127.0.0.1');
    await connectMany(port, 20);
    await server.close();
    const c = perThread(server);
    assert.deepEqual(
      c.map((t) => t.acceptsPending),
      [0, 0],
      'close() resolved with accepts still posted',
    );
    assert.ok(c[1].acceptsCancelled >= 32, `thread 1 cancelled ${c[1].acceptsCancelled}`);
    assert.equal(await connectOutcome(port), 'ECONNREFUSED');
  });

  it('with maxConnections 16 each thread holds at most its share (8); clients past one share go to the other', async () => {
    const h = await startServer('threaded', { threads: 2, maxConnections: 16 });
    assert.deepEqual(
      perThread(h.server).map((t) => t.acceptTarget),
      [8, 8],
    );
    // 24 clients: a thread at its share cancels its posted accepts, so at
    // most what it had posted waits for it and the rest reach the other.
    await connectMany(h.port, 24, undefined, 4);
    await h.waitSessions(16, 20_000);
    await delay(200);
    assert.deepEqual(
      h.server.stats().perThread.map((t) => t.inUse),
      [8, 8],
    );
  });
});

describeWindows('IOCP socket reuse (DisconnectEx TF_REUSE_SOCKET)', function () {
  this.timeout(60_000);
  afterEach(cleanup);

  it('off: closed sockets are closed, never recycled', async () => {
    const h = await withReuseMode('off', () => startEcho('threaded'));
    const clients = await connectMany(h.port, 10);
    for (const c of clients) c.end();
    await h.waitCloses(10);
    await waitFor(() => h.server.stats().inUse === 0, 5_000, 'inUse 0');
    const c = iocp(h.server);
    assert.equal(c.reuseMode, 0);
    assert.equal(c.reuseAttempts, 0);
    assert.equal(c.socketsClosed, 10);
  });

  for (const threads of [1, 2]) {
    it(`force: every graceful close attempts DisconnectEx, and a socket that is not reusable falls back to a fresh one (threads: ${threads})`, async () => {
      const h = await withReuseMode('force', () => startEcho('threaded', { threads }));
      // A mode is the same on every thread, never summed over them.
      assert.equal(iocp(h.server).reuseMode, 2);
      const clients = await connectMany(h.port, 20);
      for (const c of clients) c.end();
      await h.waitCloses(20);
      await waitFor(() => h.server.stats().inUse === 0, 10_000, 'every slot released after its DisconnectEx');
      const c = iocp(h.server);
      assert.equal(c.reuseAttempts, 20, 'each graceful close must try DisconnectEx');
      // Each attempt ends one way or the other, and is counted.
      assert.equal(c.reuseOk + c.reuseFailed + c.reuseStalled, 20, JSON.stringify(c));
      if (c.reuseOk === 0) {
        // The Wine outcome: detected, closed, replaced by fresh sockets.
        assert.equal(c.socketsClosed, 20);
      }
      // Whatever happened, the pool is whole and serves new clients.
      const again = await connectMany(h.port, 20);
      const readers = again.map((s) => reader(s));
      again.forEach((s, i) => s.write(`again${i};`));
      await Promise.all(readers.map((r, i) => r.readExactly(`again${i};`.length)));
      readers.forEach((r, i) => assert.equal(r.text(), `again${i};`));
    });
  }

  it('auto: gives up recycling after repeated failures with none working, and says so in stats', async function () {
    const h = await withReuseMode('auto', () => startEcho('threaded'));
    for (let i = 0; i < 6; i++) {
      const c = await connect(h.port);
      c.end();
      await h.waitCloses(i + 1);
      await waitFor(() => h.server.stats().inUse === 0, 5_000, 'inUse 0');
    }
    const c = iocp(h.server);
    assert.equal(c.reuseMode, 1);
    if (c.reuseOk > 0) this.skip(); // recycling works here (real Windows): nothing to give up
    assert.equal(c.reuseDisabled, 1, JSON.stringify(c));
    assert.equal(c.reuseAttempts, 3, 'auto mode must stop attempting after 3 failures');
  });

  for (const threads of [1, 2]) {
    it(`force: no byte for a recycled slot or socket ever reaches the next client (threads: ${threads})`, async () => {
      const h = await withReuseMode('force', () => startServer('threaded', { threads, poolSize: 16, poolGrowth: 16 }));
      for (let round = 0; round < 4; round++) {
        // Old generation: each client says its nonce and leaves.
        const before = h.sessions.length;
        const olds = await connectMany(h.port, 16);
        const nonces = olds.map(() => randomBytes(16));
        olds.forEach((c, i) => c.write(nonces[i]));
        await h.waitSessions(before + 16);
        await waitFor(() => h.sessions.slice(-16).every((s) => h.receivedBytes(s.id).length === 16), 10_000, 'nonces');
        const oldSessions = h.sessions.slice(-16);
        for (const c of olds) c.end();
        await waitFor(() => oldSessions.every((s) => h.closeById.has(s.id)), 10_000, 'old sessions closed');
        await waitFor(() => h.server.stats().inUse === 0, 10_000, 'slots and sockets back in the pool');
        // New generation on the same slots (and recycled sockets, if any).
        const news = await connectMany(h.port, 16);
        const readers = news.map((s) => reader(s));
        await h.waitSessions(before + 32);
        // Late commands to every old id: refused, nothing sent.
        for (const s of oldSessions) {
          assert.equal(h.server.send(s.id, 'stale bytes'), false);
          assert.equal(h.server.closeSession(s.id), false);
        }
        await delay(100);
        for (const r of readers) assert.equal(r.length, 0, `a new client received ${r.length} bytes meant for an old id`);
        for (const c of news) c.end();
        await waitFor(() => h.server.stats().inUse === 0, 10_000, 'new sessions closed');
      }
      const c = iocp(h.server);
      assert.ok(c.reuseAttempts > 0, 'the reuse path was never attempted');
    });
  }
});
