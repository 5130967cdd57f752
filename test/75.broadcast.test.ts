import * as assert from 'node:assert/strict';

import { DRIVERS, cleanup, connectMany, delay, randomBytes, reader, startServer, waitFor } from './helpers';

for (const driver of DRIVERS) {
  describe(`broadcast (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    it('broadcast(data) sends exactly the bytes to every open session and returns how many it reached', async () => {
      const h = await startServer(driver);
      const N = 50;
      const clients = await connectMany(h.port, N);
      const readers = clients.map((c) => reader(c));
      await h.waitSessions(N);
      await waitFor(() => h.server.stats().inUse === N, 5_000, 'inUse N');
      const msg = randomBytes(3000);
      assert.equal(h.server.broadcast(msg), N);
      const got = await Promise.all(readers.map((r) => r.readExactly(msg.length)));
      for (const g of got) assert.ok(g.equals(msg));
      await delay(100);
      for (const r of readers) assert.equal(r.length, msg.length, 'a client received more than one copy');
      await waitFor(() => h.server.stats().bytesOut === N * msg.length, 5_000, 'bytesOut N * size');
    });

    it('broadcast(data, ids) reaches exactly the listed live sessions, skips and counts a stale id, and returns the number reached', async () => {
      const h = await startServer(driver);
      const clients = await connectMany(h.port, 6);
      const readers = clients.map((c) => reader(c));
      await h.waitSessions(6);
      // Close one session so its id is stale.
      const gone = h.sessions[5];
      assert.equal(gone.close(), true);
      await h.waitClose(gone.id);
      const targets = [h.sessions[0], h.sessions[2], h.sessions[4]];
      const staleBefore = h.server.stats().staleCommands;
      const msg = Buffer.from('to a few');
      const reached = h.server.broadcast(msg, [targets[0].id, gone.id, targets[1].id, targets[2].id]);
      assert.equal(reached, 3);
      assert.equal(h.server.stats().staleCommands - staleBefore, 1);
      await delay(200);
      for (let i = 0; i < 5; i++) {
        const r = readers.find((x) => x.socket.localPort === h.sessions[i].remotePort);
        assert.ok(r !== undefined);
        const want = targets.includes(h.sessions[i]) ? msg : Buffer.alloc(0);
        assert.ok(r.bytes().equals(want), `session ${i}: got ${JSON.stringify(r.text())}`);
      }
    });

    it('broadcast(data, Float64Array of ids) works like an array and an empty list reaches nobody', async () => {
      const h = await startServer(driver);
      const clients = await connectMany(h.port, 3);
      const readers = clients.map((c) => reader(c));
      await h.waitSessions(3);
      assert.equal(h.server.broadcast('f64', new Float64Array(h.sessions.map((s) => s.id))), 3);
      assert.equal(h.server.broadcast('none', []), 0);
      await Promise.all(readers.map((r) => r.readExactly(3)));
      await delay(100);
      for (const r of readers) assert.equal(r.text(), 'f64');
    });

    it('broadcast(data) does not count, or send to, a session that is closing (flushing its queue after closeSession)', async () => {
      const h = await startServer(driver, { maxQueuedBytes: 64 * 1024 * 1024 });
      const clients = await connectMany(h.port, 4);
      const readers = clients.map((c) => reader(c));
      await h.waitSessions(4);
      const slowSession = h.sessions[0];
      const slowIdx = clients.findIndex((c) => c.localPort === slowSession.remotePort);
      clients[slowIdx].pause();
      const big = Buffer.alloc(16 * 1024 * 1024, 1);
      slowSession.send(big);
      await delay(50);
      assert.ok(slowSession.bufferedAmount > 0, 'the queue of the stalled session is empty; it cannot be made to linger');
      assert.equal(h.server.closeSession(slowSession.id), true);
      await delay(50);
      assert.equal(slowSession.closed, false, 'the session closed without flushing');
      const reached = h.server.broadcast('tail');
      assert.equal(reached, 3, 'a closing session was counted as reached');
      clients[slowIdx].resume();
      await readers[slowIdx].waitEnd(20_000);
      assert.equal(readers[slowIdx].length, big.length, 'bytes after closeSession() reached the closing session');
    });
  });
}
