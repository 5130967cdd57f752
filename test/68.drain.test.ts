/**
 * Graceful drain on deploy: close({ drain: ms }) closes the listener at once,
 * lets live sessions finish by themselves, and closes the stragglers with
 * 'shutdown' at the deadline.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';

import { DRIVERS, HOST4, assertThrowsCode, cleanup, connect, delay, reader, startEcho, waitFor, withTimeout } from './helpers';

/** Resolves with the error (or null) of one connect attempt. */
function tryConnect(port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST4);
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err));
  });
}

for (const driver of DRIVERS) {
  describe(`close({ drain }) (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanup);

    it("stops accepting at once, emits 'draining', and resolves as soon as the live sessions have ended by themselves", async () => {
      const h = await startEcho(driver);
      const clients = await Promise.all([connect(h.port), connect(h.port), connect(h.port)]);
      await h.waitSessions(3);
      let draining = 0;
      h.server.on('draining', () => draining++);
      const started = Date.now();
      const closed = h.server.close({ drain: 10_000 });
      assert.equal(h.server.listening, false);
      assert.equal(h.server.address(), null);
      await waitFor(() => draining === 1, 5_000, "'draining'");
      // The listener is gone: a balancer's health check (a connect) fails.
      const err = await tryConnect(h.port);
      assert.equal(err?.code, 'ECONNREFUSED');
      // The live sessions still work.
      for (const [i, c] of clients.entries()) {
        const r = reader(c);
        c.write(`still ${i}`);
        assert.equal((await r.readExactly(7)).toString(), `still ${i}`);
        c.end();
      }
      await withTimeout(closed, 5_000, 'close({ drain }) once every session ended');
      assert.ok(Date.now() - started < 5_000);
      assert.deepEqual(
        h.closes.map((c) => c.reason),
        ['remote', 'remote', 'remote'],
      );
      const st = h.server.stats();
      assert.equal(st.drains, 1);
      assert.equal(st.drainCloses, 0);
      assert.equal(st.inUse, 0);
    });

    it("closes the stragglers with 'shutdown' at the deadline, not before", async () => {
      const h = await startEcho(driver);
      const [quick, slow] = await Promise.all([connect(h.port), connect(h.port)]);
      await h.waitSessions(2);
      const quickSession = h.byRemotePort(quick.localPort as number);
      const slowSession = h.byRemotePort(slow.localPort as number);
      const started = Date.now();
      const closed = h.server.close({ drain: 800 });
      quick.end();
      const quickClose = await h.waitClose(quickSession?.id as number);
      assert.equal(quickClose.reason, 'remote');
      const rs = reader(slow);
      slow.write('echo');
      assert.equal((await rs.readExactly(4)).toString(), 'echo');
      await withTimeout(closed, 10_000, 'close({ drain: 800 })');
      const slowClose = h.closeById.get(slowSession?.id as number);
      assert.equal(slowClose?.reason, 'shutdown');
      const at = slowClose.at - started;
      assert.ok(at >= 750, `the straggler closed after ${at} ms, before the deadline`);
      await rs.waitClose();
      const st = h.server.stats();
      assert.equal(st.drainCloses, 1);
      assert.equal(st.drains, 1);
    });

    it('a drain with no session open finishes at once; a plain close() during a drain ends it now', async () => {
      const idle = await startEcho(driver);
      let idleDraining = 0;
      idle.server.on('draining', () => idleDraining++);
      await withTimeout(idle.server.close({ drain: 60_000 }), 5_000, 'an idle drain');
      assert.equal(idleDraining, 1, "'draining' comes before the close");

      const h = await startEcho(driver);
      await connect(h.port);
      await h.waitSessions(1);
      const draining = h.server.close({ drain: 60_000 });
      await delay(50);
      assert.equal(h.closes.length, 0);
      await withTimeout(h.server.close(), 10_000, 'close() during the drain');
      await draining;
      assert.equal(h.closes[0].reason, 'shutdown');
    });

    it('rejects a bad drain value', async () => {
      const h = await startEcho(driver);
      for (const options of [{ drain: -1 }, { drain: 1.5 }, { drain: '5' }, { wait: 1 }, 5]) {
        assertThrowsCode(() => h.server.close(options as never), 'ERR_ACCEPTPOOL_INVALID_ARG', JSON.stringify(options));
      }
      assert.equal(h.server.listening, true);
    });
  });
}
