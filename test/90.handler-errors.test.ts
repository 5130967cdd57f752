/**
 * A handler that throws must not break the server: the error surfaces as an
 * uncaught exception, and later events keep arriving. Run in a child process
 * so the exception does not fail the mocha run itself.
 */
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';

import { DRIVERS, cleanup, connect, delay, reader, spawnFixture, startServer, waitFor } from './helpers';
import type { ChildServer } from './helpers';
import type { ReadyMessage, UncaughtMessage } from './fixtures/throwing-server';
import type { EventMessage, ReadyMessage as FaultsReady, ResultMessage, StateMessage } from './fixtures/handler-faults';

/**
 * Asks the server for its flood while not reading for a moment: the send
 * then meets full socket buffers and waits in the queue, so 'drain' must
 * follow. (With a reader draining loopback at once, the kernel can take all
 * of it in one write, and no 'drain' is due: seen once in a full run.)
 */
async function floodPaused(socket: net.Socket): Promise<void> {
  socket.pause();
  socket.write('flood');
  await delay(200);
  socket.resume();
}

for (const driver of DRIVERS) {
  describe(`throwing handlers (${driver} driver)`, function () {
    this.timeout(20_000);
    let child: ChildServer | null = null;
    afterEach(async () => {
      await cleanup();
      if (child !== null) await child.close();
      child = null;
    });

    it("an exception thrown in a 'data' handler surfaces as uncaughtException, and the session and server keep working", async () => {
      const c = (child = spawnFixture('throwing-server', [driver]));
      const { port } = await c.next<ReadyMessage>('ready', 10_000);
      const a = await connect(port);
      const ra = reader(a);
      a.write('throw please');
      const u = await c.next<UncaughtMessage>('uncaught');
      assert.equal(u.message, 'boom in data handler: throw please');
      // The same session still works.
      a.write('echo me');
      assert.equal((await ra.readExactly(7)).toString(), 'echo me');
      // And a new one.
      const b = await connect(port);
      const rb = reader(b);
      b.write('new one');
      assert.equal((await rb.readExactly(7)).toString(), 'new one');
      assert.equal(c.exited, false, 'the child died');
      assert.equal(c.all<UncaughtMessage>('uncaught').length, 0, 'more than one uncaught exception');
    });

    it("an exception thrown in every 'session' handler surfaces once per session, and those sessions still get their data events", async () => {
      const c = (child = spawnFixture('throwing-server', [driver], { env: { THROW_ON_SESSION: '1' } }));
      const { port } = await c.next<ReadyMessage>('ready', 10_000);
      const clients = await Promise.all([connect(port), connect(port), connect(port)]);
      const readers = clients.map((s) => reader(s));
      clients.forEach((s, i) => s.write(`hello ${i}`));
      const got = await Promise.all(readers.map((r) => r.readExactly(7)));
      got.forEach((g, i) => assert.equal(g.toString(), `hello ${i}`));
      await waitFor(() => c.all<UncaughtMessage>('uncaught').length === 3, 5_000, '3 uncaught exceptions');
      await delay(100);
      const msgs = c.all<UncaughtMessage>('uncaught');
      assert.equal(msgs.length, 3);
      for (const m of msgs) assert.match(m.message, /^boom in session handler of \d+$/);
      assert.equal(c.exited, false);
    });
  });
}

/**
 * Handler isolation: a user exception goes to 'uncaughtException' and costs
 * nothing else. Every other listener of the event, every later event and the
 * endpoint's own bookkeeping go on as if nothing had thrown, and listen(),
 * close() and connect() settle by the library's state, never by a listener.
 */
for (const driver of DRIVERS) {
  describe(`handler isolation (${driver} driver)`, function () {
    this.timeout(30_000);
    let child: ChildServer | null = null;
    afterEach(async () => {
      await cleanup();
      if (child !== null) await child.close();
      child = null;
    });

    function start(scenario: string): ChildServer {
      return (child = spawnFixture('handler-faults', [driver, scenario]));
    }

    function events(c: ChildServer, name: string): EventMessage[] {
      return c.all<EventMessage>('event').filter((e) => e.name === name);
    }

    function uncaught(c: ChildServer, message: string | RegExp): UncaughtMessage[] {
      return c
        .all<UncaughtMessage>('uncaught')
        .filter((u) => (typeof message === 'string' ? u.message === message : message.test(u.message)));
    }

    async function waitCount(c: ChildServer, what: string, count: () => number, n: number): Promise<void> {
      await waitFor(() => count() >= n || c.exited, 10_000, `${n} × ${what} (have ${count()})`);
      assert.equal(c.exited, false, `the child died: ${c.stderr}`);
      assert.equal(count(), n, what);
    }

    /** The endpoint's session table agrees with the native pool: `open` sessions everywhere. */
    async function assertTable(c: ChildServer, open: number): Promise<void> {
      c.send({ type: 'state' });
      const st = await c.next<StateMessage>('state');
      assert.deepEqual({ live: st.live, inTable: st.inTable, inUse: st.inUse }, { live: open, inTable: open, inUse: open });
    }

    it("a throwing session.onclose hides no 'sessionClose' (nor a throwing onend the 'end' and its FIN), and leaves the session table intact", async () => {
      const c = start('session-handlers');
      const { port } = await c.next<FaultsReady>('ready', 10_000);
      const N = 20;
      const sockets = await Promise.all(Array.from({ length: N }, () => connect(port)));
      const readers = sockets.map((s) => reader(s));
      for (const s of sockets) s.end();
      await waitCount(c, "'sessionClose' events", () => events(c, 'sessionClose').length, N);
      for (const e of events(c, 'sessionClose')) assert.equal(e.detail, 'remote');
      assert.equal(new Set(events(c, 'sessionClose').map((e) => e.id)).size, N, 'one sessionClose per session');
      assert.equal(events(c, 'end').length, N, "'end' events");
      await waitCount(c, 'onclose exceptions', () => uncaught(c, 'onclose remote').length, N);
      await waitCount(c, 'onend exceptions', () => uncaught(c, 'onend').length, N);
      // The FIN was still answered after the throwing onend.
      await Promise.all(readers.map((r) => r.waitEnd()));
      await assertTable(c, 0);
    });

    it("a throwing session.ondata hides no 'data' for that chunk, and a throwing ondrain no 'drain'", async () => {
      const c = start('session-handlers');
      const { port, floodBytes } = await c.next<FaultsReady>('ready', 10_000);
      const socket = await connect(port);
      const r = reader(socket);
      socket.write('hello');
      assert.equal((await r.readExactly(5)).toString(), 'hello', "the 'data' listener did not run for the chunk");
      await waitCount(c, "'data' events", () => events(c, 'data').length, 1);
      assert.equal(events(c, 'data')[0].detail, 'hello');
      await waitCount(c, 'ondata exceptions', () => uncaught(c, 'ondata hello').length, 1);
      await floodPaused(socket);
      await r.readExactly(5 + floodBytes);
      await waitCount(c, "'drain' events", () => events(c, 'drain').length, 1);
      await waitCount(c, 'ondrain exceptions', () => uncaught(c, 'ondrain').length, 1);
      await assertTable(c, 1);
    });

    it('a throwing first listener of every server event leaves the second listener its event, each exception surfacing once', async () => {
      const c = start('listeners');
      const { port, floodBytes } = await c.next<FaultsReady>('ready', 10_000);
      const socket = await connect(port);
      const r = reader(socket);
      await waitCount(c, "'session' events", () => events(c, 'session').length, 1);
      const id = events(c, 'session')[0].id;
      socket.write('hi');
      assert.equal((await r.readExactly(2)).toString(), 'hi');
      await floodPaused(socket);
      await r.readExactly(2 + floodBytes);
      await waitCount(c, "'drain' events", () => events(c, 'drain').length, 1);
      socket.end();
      await waitCount(c, "'sessionClose' events", () => events(c, 'sessionClose').length, 1);
      assert.deepEqual(
        c.all<EventMessage>('event').map((e) => [e.name, e.id]),
        [
          ['session', id],
          ['data', id],
          ['data', id],
          ['drain', id],
          ['end', id],
          ['sessionClose', id],
        ],
      );
      for (const name of ['session', 'drain', 'end', 'sessionClose']) {
        await waitCount(c, `${name} exceptions`, () => uncaught(c, `first ${name} listener`).length, 1);
      }
      await waitCount(c, 'data exceptions', () => uncaught(c, 'first data listener').length, 2);
      await assertTable(c, 0);
    });

    if (driver === 'threaded') {
      it("a throwing first 'staleCommand' listener leaves the second its event", async () => {
        const c = start('listeners');
        const { port } = await c.next<FaultsReady>('ready', 10_000);
        const socket = await connect(port);
        await waitCount(c, "'session' events", () => events(c, 'session').length, 1);
        const id = events(c, 'session')[0].id;
        socket.write('stale');
        // The server blocks its JS thread on 'stale' until this reset has
        // closed the session natively, then sends to it.
        await delay(100);
        socket.resetAndDestroy();
        await waitCount(c, "'staleCommand' events", () => events(c, 'staleCommand').length, 1);
        assert.deepEqual(events(c, 'staleCommand')[0], { type: 'event', name: 'staleCommand', id, detail: 'send' });
        await waitCount(c, 'staleCommand exceptions', () => uncaught(c, `first staleCommand listener (stale ${id})`).length, 1);
        await waitCount(c, "'sessionClose' events", () => events(c, 'sessionClose').length, 1);
        await assertTable(c, 0);
      });
    }

    it("a throwing 'listening' listener does not make listen() reject: it resolves and the server listens", async () => {
      const c = start('listening');
      const result = await c.next<ResultMessage>('result', 10_000);
      assert.deepEqual(result, { type: 'result', settled: 'resolved', listening: true });
      await waitCount(c, 'listening exceptions', () => uncaught(c, 'listening listener').length, 1);
    });

    it("a throwing 'close' listener on a never-listened server does not make close() throw: it resolves", async () => {
      const c = start('close-unlistened');
      const result = await c.next<ResultMessage>('result', 10_000);
      assert.deepEqual(result, { type: 'result', settled: 'resolved' });
      await waitCount(c, 'close exceptions', () => uncaught(c, 'close listener').length, 1);
    });

    it("a client's throwing first 'session' listener neither fails connect() nor hides the event from the second", async () => {
      const c = start('client');
      const result = await c.next<ResultMessage>('result', 10_000);
      assert.deepEqual(result, { type: 'result', settled: 'resolved' });
      await waitCount(c, "client 'session' events", () => events(c, 'session').length, 1);
      const id = events(c, 'session')[0].id;
      await waitCount(c, 'session exceptions', () => uncaught(c, `first client session listener ${id}`).length, 1);
      await waitCount(c, "client 'data' events", () => events(c, 'data').length, 1);
      assert.equal(events(c, 'data')[0].detail, 'via client');
      await assertTable(c, 1);
    });
  });
}

for (const driver of DRIVERS) {
  describe(`listener bookkeeping under isolation (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    it('keeps EventEmitter order and once/prepend/off/removeAllListeners semantics for server events', async () => {
      const h = await startServer(driver);
      const calls: string[] = [];
      const log = (name: string) => (): void => {
        calls.push(name);
      };
      const e = log('E');
      h.server.on('session', log('A'));
      h.server.prependListener('session', log('B'));
      h.server.once('session', log('C'));
      h.server.prependOnceListener('session', log('D'));
      h.server.on('session', e);
      h.server.off('session', e);
      const next = async (n: number): Promise<string[]> => {
        calls.length = 0;
        await connect(h.port);
        await h.waitSessions(n);
        return [...calls];
      };
      assert.deepEqual(await next(1), ['D', 'B', 'A', 'C']);
      assert.deepEqual(await next(2), ['B', 'A']);
      // B was prepended before startServer's own listener.
      h.server.removeListener('session', h.server.listeners('session')[0] as () => void);
      assert.deepEqual(await next(3), ['A']);
      h.server.removeAllListeners('session');
      h.server.on('session', log('F'));
      h.server.on('session', (s) => h.sessions.push(s));
      assert.deepEqual(await next(4), ['F']);
      h.server.removeAllListeners();
      h.server.addListener('session', log('G'));
      h.server.addListener('session', (s) => h.sessions.push(s));
      assert.deepEqual(await next(5), ['G']);
      assert.equal(h.server.listenerCount('session'), 2);
    });
  });
}
