import * as assert from 'node:assert/strict';

import { DRIVERS, cleanup, connect, connectMany, delay, reader, startEcho, startServer, waitFor } from './helpers';

for (const driver of DRIVERS) {
  describe(`accept pool (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanup);

    it('grows from poolSize 16 by poolGrowth 16 to take a burst of 200 connections', async () => {
      const h = await startServer(driver, { poolSize: 16, poolGrowth: 16 });
      const initial = h.server.stats();
      assert.equal(initial.poolSize, 16, 'the initial pool must be allocated at listen');
      assert.equal(initial.growths, 0);
      await connectMany(h.port, 200);
      await h.waitSessions(200);
      await waitFor(() => h.server.stats().inUse === 200, 5_000, 'inUse 200');
      const st = h.server.stats();
      assert.ok(st.growths > 0, 'no growth counted');
      assert.ok(st.poolSize >= 200, `poolSize ${st.poolSize} cannot hold 200 sessions`);
      assert.equal(st.poolSize % 16, 0, 'the pool grows in whole chunks');
      assert.equal(st.poolSize, 16 + 16 * st.growths, 'poolSize must equal initial + growths * poolGrowth');
      assert.equal(st.peakInUse, 200);
      assert.equal(st.poolFree, st.poolSize - st.inUse);
      assert.equal(new Set(h.sessions.map((s) => s.id)).size, 200, 'duplicate session ids');
    });

    it('shrinks an idle grown pool after shrinkDelay and still never repeats an id', async () => {
      const h = await startServer(driver, { poolSize: 16, poolGrowth: 16, shrinkDelay: 1000 });
      const first = await connectMany(h.port, 100);
      await h.waitSessions(100);
      await waitFor(() => h.server.stats().inUse === 100, 5_000, 'inUse 100');
      const grown = h.server.stats().poolSize;
      assert.ok(grown >= 100);
      for (const c of first) c.end();
      await h.waitCloses(100);
      await waitFor(() => h.server.stats().shrinks > 0 && h.server.stats().poolSize < grown, 8_000, 'the pool to shrink');
      const shrunk = h.server.stats();
      assert.ok(shrunk.poolSize >= 16, 'the pool shrank below its initial size');
      // Grow again: slots that went away and came back must not repeat ids.
      await connectMany(h.port, 100);
      await h.waitSessions(200);
      assert.equal(new Set(h.sessions.map((s) => s.id)).size, 200, 'a session id was handed out twice across shrink and growth');
    });

    it('holds at most maxConnections (50) sessions open while 80 clients connect, and pauses accepting', async () => {
      const h = await startEcho(driver, { maxConnections: 50 });
      const clients = await connectMany(h.port, 80);
      const readers = clients.map((c) => reader(c));
      clients.forEach((c, i) => c.write(`ping ${i};`));
      await h.waitSessions(50);
      await delay(500);
      assert.equal(h.sessions.length, 50, 'more than maxConnections sessions were accepted');
      assert.ok(h.maxOpen <= 50, `maxOpen ${h.maxOpen}`);
      await waitFor(() => h.server.stats().acceptPauses > 0, 3_000, 'acceptPauses > 0');
      const st = h.server.stats();
      assert.ok(st.inUse <= 50, `inUse ${st.inUse}`);
      assert.equal(st.accepts, 50);
      const served = readers.filter((r) => r.length > 0).length;
      assert.equal(served, 50, 'exactly the 50 accepted clients have their echo');
    });

    it('accepts the waiting clients once sessions close below maxConnections, until all 80 are served', async () => {
      const h = await startEcho(driver, { maxConnections: 50 });
      const clients = await connectMany(h.port, 80);
      const readers = clients.map((c) => reader(c));
      const msgs = clients.map((_, i) => Buffer.from(`ping ${i};`));
      clients.forEach((c, i) => c.write(msgs[i]));
      await h.waitSessions(50);
      await waitFor(() => readers.filter((r) => r.length === msgs[readers.indexOf(r)].length).length === 50, 5_000, '50 echoes');
      // Close the 30 first served clients.
      const servedIdx = readers
        .map((r, i) => (r.length > 0 ? i : -1))
        .filter((i) => i >= 0)
        .slice(0, 30);
      for (const i of servedIdx) clients[i].end();
      await waitFor(
        () => readers.every((r, i) => r.length === msgs[i].length),
        10_000,
        `every client echoed (have ${readers.filter((r) => r.length > 0).length})`,
      );
      for (let i = 0; i < 80; i++) assert.ok(readers[i].bytes().equals(msgs[i]), `client ${i} got a wrong echo`);
      assert.equal(h.sessions.length, 80);
      assert.ok(h.maxOpen <= 50, `at one point ${h.maxOpen} sessions were open at once`);
      await waitFor(() => h.server.stats().accepts === 80, 3_000, 'accepts 80');
      assert.ok(h.server.stats().inUse <= 50);
    });

    it('counts a client that resets while it waits in the backlog: a session or an acceptAborts, exactly once', async () => {
      // A holds the only slot; B is the next to be accepted; C connects and
      // resets behind them. Linux hands C out as a session that closes with
      // 'reset'; Wine fails the AcceptEx that takes C (its peer is gone), so
      // C is counted in acceptAborts. Either way, three connections, three
      // counts.
      const h = await startServer(driver, { maxConnections: 1 });
      const a = await connect(h.port);
      await h.waitSessions(1);
      const b = await connect(h.port);
      const waiting = (): number => h.server.stats().backendCounters?.acceptsWaiting ?? 1;
      await waitFor(() => waiting() === 1, 5_000, 'B accepted and waiting for a slot (IOCP)');
      const c = await connect(h.port);
      c.resetAndDestroy();
      await delay(200);
      assert.equal(h.sessions.length, 1, 'only A holds a session while the pool is full');
      a.destroy();
      await h.waitSessions(2);
      b.destroy();
      const st = (): ReturnType<typeof h.server.stats> => h.server.stats();
      const counted = (): number => st().accepts + st().acceptAborts;
      await waitFor(() => counted() >= 3, 5_000, 'accepts + acceptAborts reach 3');
      await delay(200);
      assert.equal(counted(), 3, `accepts ${st().accepts} + acceptAborts ${st().acceptAborts}`);
      assert.equal(st().acceptErrors, st().acceptAborts, 'aborted accepts are accept errors too');
      await waitFor(() => h.closes.length === h.sessions.length, 5_000, 'every session closed');
      assert.equal(h.sessions.length, st().accepts);
      assert.equal(st().inUse, 0);
    });

    it('holds maxConnections (10) even when poolSize (64) is larger', async () => {
      const h = await startEcho(driver, { maxConnections: 10, poolSize: 64 });
      const clients = await connectMany(h.port, 20);
      clients.forEach((c, i) => c.write(`${i};`));
      await h.waitSessions(10);
      await delay(400);
      assert.equal(h.sessions.length, 10);
      assert.ok(h.maxOpen <= 10);
      assert.ok(h.server.stats().inUse <= 10);
    });
  });
}
