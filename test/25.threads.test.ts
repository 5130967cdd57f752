/**
 * Several I/O threads in one server or client (threads: N): each thread runs
 * an engine of its own, the session id names the thread (session.thread),
 * commands by id go to that thread, stats() sums the threads and lists each,
 * and close() waits for every thread. (The echo and generation-promise
 * suites run with two threads too: test/10, test/20.)
 */
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';

import { createClient, createServer } from '../src/index';
import type { Server, Session } from '../src/index';
import { kThreadListeners } from '../src/options';
import type { ServerOptions } from '../src/options';
import {
  MULTI_THREAD,
  SLOT_MASK,
  assertThrowsCode,
  cleanup,
  connectMany,
  delay,
  reader,
  startEcho,
  startServer,
  track,
  waitFor,
} from './helpers';
import type { Harness, Reader } from './helpers';

const THREADS = 2;

/** The sessions of `h` on each thread, by thread. */
function byThread(sessions: readonly Session[]): Session[][] {
  const out: Session[][] = Array.from({ length: THREADS }, () => []);
  for (const s of sessions) out[s.thread].push(s);
  return out;
}

/** Connects `n` clients and waits for their sessions; each client with its reader and session. */
async function burst(h: Harness, n: number): Promise<{ socket: net.Socket; reader: Reader; session: Session }[]> {
  const before = h.sessions.length;
  const sockets = await connectMany(h.port, n, undefined, 100);
  await h.waitSessions(before + n);
  return sockets.map((socket) => {
    const session = h.byRemotePort(socket.localPort ?? -1);
    assert.ok(session !== undefined, `no session for client port ${String(socket.localPort)}`);
    return { socket, reader: reader(socket), session };
  });
}

// On Windows both are one listener, on which every thread posts AcceptEx.
const LISTENERS: { label: string; options: ServerOptions }[] = [
  { label: 'a listener per thread (SO_REUSEPORT, the default; Windows: one listener)', options: {} },
  {
    label: 'one shared listener (EPOLLEXCLUSIVE; Windows: AcceptEx from each thread)',
    options: { [kThreadListeners]: 'shared' } as ServerOptions,
  },
];

(MULTI_THREAD ? describe : describe.skip)(`threads: ${THREADS} (threaded driver)`, function () {
  this.timeout(60_000);
  afterEach(cleanup);

  it('a connection burst lands on both threads, and stats() sums the threads and reports each', async () => {
    const h = await startEcho('threaded', { threads: THREADS });
    const clients = await burst(h, 300);
    const st = h.server.stats();
    assert.equal(st.perThread.length, THREADS);
    const groups = byThread(clients.map((c) => c.session));
    for (let t = 0; t < THREADS; t++) {
      assert.ok(groups[t].length > 0, `no session on thread ${t} (${groups.map((g) => g.length).join(' / ')})`);
      assert.equal(st.perThread[t].accepts, groups[t].length, `thread ${t}'s accepts`);
      assert.equal(st.perThread[t].inUse, groups[t].length, `thread ${t}'s sessions in use`);
    }
    for (const key of ['accepts', 'inUse', 'poolSize', 'poolFree', 'bytesIn'] as const) {
      assert.equal(
        st[key],
        st.perThread.reduce((n, t) => n + t[key], 0),
        `${key} is the sum of the threads'`,
      );
    }
    assert.equal(st.accepts, 300);
    assert.equal(new Set(clients.map((c) => c.session.id)).size, 300, 'an id was handed out twice');
  });

  it('commands by id reach the thread that owns the session, and only that thread sends', async () => {
    const h = await startServer('threaded', { threads: THREADS });
    const clients = await burst(h, 60);
    const groups = byThread(clients.map((c) => c.session));
    assert.ok(groups[0].length > 0 && groups[1].length > 0, 'both threads need sessions');
    const before = h.server.stats().perThread.map((t) => t.bytesOut);
    // Thread 1's sessions only: each client gets exactly its own marker.
    let sent = 0;
    for (const s of groups[1]) {
      const text = `to ${s.id} on thread 1;`;
      assert.equal(h.server.send(s.id, text), true);
      sent += text.length;
    }
    for (const c of clients) {
      if (c.session.thread !== 1) continue;
      const want = `to ${c.session.id} on thread 1;`;
      assert.equal((await c.reader.readExactly(want.length)).toString(), want);
    }
    await waitFor(() => h.server.stats().perThread[1].bytesOut === before[1] + sent, 5_000, "thread 1's bytesOut");
    assert.equal(h.server.stats().perThread[0].bytesOut, before[0], 'thread 0 sent bytes for thread 1');
    // Closing thread 0's sessions by id closes them there and nowhere else.
    for (const s of groups[0]) assert.equal(h.server.closeSession(s.id), true);
    await waitFor(() => groups[0].every((s) => h.closeById.has(s.id)), 10_000, "thread 0's sessions to close");
    for (const s of groups[0]) assert.equal(h.closeById.get(s.id)?.reason, 'local');
    await waitFor(() => h.server.stats().perThread[0].inUse === 0, 5_000, 'thread 0 empty');
    assert.equal(h.server.stats().perThread[1].inUse, groups[1].length, "thread 1's sessions stay open");
    await delay(100);
    for (const c of clients) {
      if (c.session.thread === 0) continue;
      assert.equal(c.reader.ended, false, 'a thread 1 client was closed by a command for thread 0');
    }
    // Their ids are stale now, on the thread they named.
    const staleBefore = h.server.stats().staleCommands;
    for (const s of groups[0]) assert.equal(h.server.send(s.id, 'late'), false);
    assert.equal(h.server.stats().staleCommands - staleBefore, groups[0].length);
  });

  it("peakInUse is the most sessions the threads held at once, not the sum of each thread's own peak", async () => {
    // Waves of clients, each gone before the next: the threads split every
    // wave differently, so their own peaks add up to more than any wave.
    const WAVE = 100;
    const h = await startServer('threaded', { threads: THREADS });
    const splits: string[] = [];
    for (let w = 0; w < 5; w++) {
      const clients = await burst(h, WAVE);
      splits.push(
        byThread(clients.map((c) => c.session))
          .map((g) => g.length)
          .join('/'),
      );
      for (const c of clients) c.socket.destroy();
      await waitFor(() => h.server.stats().inUse === 0, 10_000, `wave ${w} released`);
    }
    const st = h.server.stats();
    const summed = st.perThread.reduce((n, t) => n + t.peakInUse, 0);
    assert.equal(st.peakInUse, WAVE, `splits ${splits.join(', ')}; the threads' own peaks add up to ${summed}`);
    assert.ok(summed >= WAVE);
    for (const t of st.perThread) assert.ok(t.peakInUse <= st.peakInUse);
  });

  it('a stale id is refused by the thread it names once that thread has reused the slot', async () => {
    // The JS check passes (JS has not heard of the close yet), so the
    // command travels to the owning thread, whose table refuses it.
    const h = await startServer('threaded', { threads: THREADS, poolSize: 64, poolGrowth: 64 });
    const olds = await burst(h, 40);
    for (const c of olds) c.socket.resetAndDestroy();
    await waitFor(() => olds.every((c) => h.closeById.has(c.session.id)), 10_000, 'old sessions closed');
    const news = await burst(h, 40);
    const slots = new Map(news.map((c) => [c.session.id & SLOT_MASK, c]));
    const reused = olds.filter((o) => slots.has(o.session.id & SLOT_MASK));
    assert.ok(reused.length > 0, 'no slot was reused');
    for (const o of reused) {
      const n = slots.get(o.session.id & SLOT_MASK);
      assert.equal(n?.session.thread, o.session.thread, 'a slot moved to another thread');
      assert.equal(h.server.send(o.session.id, 'for the old occupant'), false);
    }
    await delay(200);
    for (const c of news) assert.equal(c.reader.length, 0, 'a new client received bytes meant for an old id');
  });

  for (const { label, options } of LISTENERS) {
    it(`server.close() with live sessions on both threads closes every one, then 'close' (${label})`, async () => {
      const h = await startServer('threaded', { threads: THREADS, ...options });
      const order: string[] = [];
      h.server.on('sessionClose', (s, reason) => order.push(`${reason}:${s.thread}`));
      h.server.on('close', () => order.push('close'));
      const clients = await burst(h, 80);
      const groups = byThread(clients.map((c) => c.session));
      if (options === LISTENERS[0].options) {
        assert.ok(groups[0].length > 0 && groups[1].length > 0, 'both threads need sessions');
      }
      // Bytes queued on each session go out before the close.
      for (const c of clients) assert.equal(h.server.send(c.session.id, `bye ${c.session.id}`), true);
      await h.server.close();
      assert.equal(order[order.length - 1], 'close', 'close came before a session had closed');
      assert.equal(order.filter((e) => e.startsWith('shutdown:')).length, 80);
      for (const c of clients) {
        const want = `bye ${c.session.id}`;
        assert.equal((await c.reader.readExactly(want.length)).toString(), want);
        await c.reader.waitEnd();
      }
      const st = h.server.stats();
      assert.equal(st.inUse, 0);
      assert.ok(st.perThread.every((t) => t.inUse === 0));
    });
  }

  it('one shared listener serves a burst on either thread with the same ids and echo', async () => {
    const h = await startEcho('threaded', { threads: THREADS, [kThreadListeners]: 'shared' } as ServerOptions);
    const clients = await burst(h, 200);
    const payloads = clients.map((c, i) => Buffer.from(`${i}:${c.session.id};`));
    clients.forEach((c, i) => c.socket.write(payloads[i]));
    await Promise.all(clients.map(async (c, i) => assert.ok((await c.reader.readExactly(payloads[i].length)).equals(payloads[i]))));
    const st = h.server.stats();
    assert.equal(st.accepts, 200);
    assert.equal(st.perThread[0].accepts + st.perThread[1].accepts, 200);
  });

  it('a client with two threads spreads its connects over both and echoes on each', async () => {
    const h = await startEcho('threaded');
    const client = createClient({ threads: THREADS });
    const got = new Map<number, string>();
    client.on('data', (s, chunk) => got.set(s.id, (got.get(s.id) ?? '') + chunk.toString()));
    try {
      const sessions = await Promise.all(Array.from({ length: 20 }, () => client.connect(h.port, '127.0.0.1')));
      assert.deepEqual(new Set(sessions.map((s) => s.thread)), new Set([0, 1]));
      for (const s of sessions) assert.equal(client.send(s.id, `hello ${s.id}`), true);
      await waitFor(() => sessions.every((s) => got.get(s.id) === `hello ${s.id}`), 10_000, 'every echo');
      assert.equal(client.stats().perThread.length, THREADS);
      assert.equal(client.stats().connects, 20);
    } finally {
      await client.close();
    }
  });
});

describe('threads and reusePort: bad values get clear codes', () => {
  afterEach(cleanup);
  const untyped = (o: Record<string, unknown>): ServerOptions => o;

  it('refuses threads that are not 0/inline to the number of cores with ERR_ACCEPTPOOL_INVALID_ARG', () => {
    for (const bad of [-1, 1.5, NaN, '2', 'threaded', null, 1000]) {
      assertThrowsCode(() => createServer(untyped({ threads: bad })), 'ERR_ACCEPTPOOL_INVALID_ARG', `threads ${String(bad)}`);
    }
    assertThrowsCode(() => createServer(untyped({ driver: 'inline', threads: 2 })), 'ERR_ACCEPTPOOL_INVALID_ARG', 'inline with 2 threads');
    if (process.platform === 'win32') {
      // 'inline' is the inline driver, which IOCP cannot run.
      assertThrowsCode(() => createServer({ threads: 'inline' }), 'ERR_ACCEPTPOOL_INVALID_ARG', "threads 'inline' on Windows");
    } else {
      assert.equal(track(createServer({ threads: 'inline' })).stats().driver, 'inline');
    }
  });

  it('refuses a reusePort that is not a boolean, and on clients', () => {
    for (const bad of [1, 'true', null]) {
      assertThrowsCode(() => createServer(untyped({ reusePort: bad })), 'ERR_ACCEPTPOOL_INVALID_ARG', `reusePort ${String(bad)}`);
    }
    assertThrowsCode(() => createClient(untyped({ reusePort: true })), 'ERR_ACCEPTPOOL_INVALID_ARG', 'reusePort on a client');
  });

  if (process.platform === 'win32') {
    it('refuses reusePort with ERR_ACCEPTPOOL_UNSUPPORTED on Windows (threads: 2 share one listener instead)', () => {
      assertThrowsCode(() => createServer({ reusePort: true }), 'ERR_ACCEPTPOOL_UNSUPPORTED', 'reusePort');
      assertThrowsCode(() => createServer({ threads: 2, reusePort: true }), 'ERR_ACCEPTPOOL_UNSUPPORTED', 'threads 2 with reusePort');
    });
  }

  if (process.platform === 'linux') {
    it('without reusePort a second server on the same port fails with EADDRINUSE; with it both listen', async () => {
      const first = track(createServer({ reusePort: true }));
      const { port } = await first.listen(0, '127.0.0.1');
      const plain: Server = track(createServer());
      await assert.rejects(plain.listen(port, '127.0.0.1'), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
      const second = track(createServer({ reusePort: true }));
      assert.equal((await second.listen(port, '127.0.0.1')).port, port);
    });
  }
});
