/**
 * Per-session timeouts in native code, with millisecond resolution:
 * session.setTimeout(ms) emits 'timeout' after ms without a read or a write,
 * like net.Socket's (once per quiet spell, never closing anything), and the
 * server's idleTimeout closes at its millisecond deadline.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';

import { createClient } from '../src/index';
import type { Session } from '../src/index';
import { cleanupAll, trackClient } from './client-helpers';
import { DRIVERS, HOST4, assertThrowsCode, connect, delay, startServer, waitFor } from './helpers';

// Timers fire late under load, never early; this is how late a test accepts
// (the machine is shared), far below the old whole-second resolution.
const LATE_MS = 250;

/** When the session's 'timeout' events came, in ms after `start`. */
function timeouts(h: { server: { on(e: 'timeout', fn: (s: Session) => void): unknown } }, start: () => number): number[] {
  const at: number[] = [];
  h.server.on('timeout', () => at.push(Date.now() - start()));
  return at;
}

for (const driver of DRIVERS) {
  describe(`session.setTimeout() (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanupAll);

    it("150 ms fires 'timeout' once, between 150 ms and a bounded delay later, and closes nothing", async () => {
      const h = await startServer(driver);
      let t0 = 0;
      const at = timeouts(h, () => t0);
      await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      t0 = Date.now();
      assert.equal(s.setTimeout(150), s);
      await waitFor(() => at.length === 1, 5_000, "'timeout'");
      assert.ok(at[0] >= 149 && at[0] < 150 + LATE_MS, `fired after ${at[0]} ms`);
      await delay(400);
      assert.equal(at.length, 1, 'fired again without activity');
      assert.equal(s.closed, false);
      assert.equal(h.server.stats().sessionTimeouts, 1);
    });

    it('a 20 ms timeout fires in well under a second (millisecond resolution)', async () => {
      const h = await startServer(driver);
      let t0 = 0;
      const at = timeouts(h, () => t0);
      await connect(h.port);
      await h.waitSessions(1);
      t0 = Date.now();
      h.sessions[0].setTimeout(20);
      await waitFor(() => at.length === 1, 5_000, "'timeout'");
      assert.ok(at[0] >= 19 && at[0] < 20 + LATE_MS, `fired after ${at[0]} ms`);
    });

    it('reads and writes push it back; after it fired, activity arms it again', async () => {
      const h = await startServer(driver);
      let t0 = 0;
      const at = timeouts(h, () => t0);
      const client = await connect(h.port);
      client.on('data', () => undefined);
      await h.waitSessions(1);
      const s = h.sessions[0];
      t0 = Date.now();
      s.setTimeout(200);
      // Reads every 50 ms for 600 ms: never 200 ms quiet.
      for (let i = 0; i < 12; i++) {
        client.write('x');
        await delay(50);
      }
      assert.equal(at.length, 0, `fired at ${at.join(', ')} ms although the peer kept sending`);
      // Writes count too.
      let quietFrom = 0;
      for (let i = 0; i < 6; i++) {
        s.send('y');
        quietFrom = Date.now() - t0;
        await delay(50);
      }
      assert.equal(at.length, 0, 'fired although the session kept writing');
      await waitFor(() => at.length === 1, 5_000, "'timeout' after the traffic stopped");
      assert.ok(at[0] - quietFrom >= 190, `fired ${at[0] - quietFrom} ms after the last activity`);
      // Fired: nothing more until activity, which arms it again.
      await delay(300);
      assert.equal(at.length, 1);
      t0 = Date.now();
      client.write('wake');
      await waitFor(() => at.length === 2, 5_000, "a second 'timeout' after new activity");
      assert.ok(at[1] >= 190 && at[1] < 200 + LATE_MS, `the re-armed timeout fired after ${at[1]} ms`);
    });

    it('setTimeout(0) disables it, a new setTimeout() restarts the clock, and the callback becomes ontimeout', async () => {
      const h = await startServer(driver);
      let fired = 0;
      h.server.on('timeout', () => fired++);
      await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      s.setTimeout(100);
      s.setTimeout(0);
      await delay(300);
      assert.equal(fired, 0, 'fired after setTimeout(0)');
      let called = 0;
      const t0 = Date.now();
      s.setTimeout(300);
      await delay(150);
      s.setTimeout(200, () => called++); // restarts: due 350 ms after t0, not 300
      assert.equal(typeof s.ontimeout, 'function');
      await waitFor(() => called === 1, 5_000, 'the callback');
      const after = Date.now() - t0;
      assert.ok(after >= 340 && after < 350 + LATE_MS, `fired ${after} ms after the first setTimeout`);
      assert.equal(fired, 1);
    });

    it('setSessionTimeout(id, ms) by id; stale ids are refused and counted; bad input is ERR_ACCEPTPOOL_INVALID_ARG', async () => {
      const h = await startServer(driver);
      let fired = 0;
      h.server.on('timeout', () => fired++);
      const client = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(h.server.setSessionTimeout(s.id, 50), true);
      await waitFor(() => fired === 1, 5_000, "'timeout' by id");
      for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 31, '100', null]) {
        assertThrowsCode(() => s.setTimeout(bad as number), 'ERR_ACCEPTPOOL_INVALID_ARG', `setTimeout(${String(bad)})`);
        assertThrowsCode(
          () => h.server.setSessionTimeout(s.id, bad as number),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          `setSessionTimeout(id, ${String(bad)})`,
        );
      }
      assertThrowsCode(
        () => s.setTimeout(10, 'no' as unknown as () => void),
        'ERR_ACCEPTPOOL_INVALID_ARG',
        'a callback that is not a function',
      );
      assertThrowsCode(() => h.server.setSessionTimeout(-5, 10), 'ERR_ACCEPTPOOL_INVALID_ARG', 'a bad id');
      client.destroy();
      await h.waitClose(s.id);
      const before = h.server.stats().staleCommands;
      assert.equal(h.server.setSessionTimeout(s.id, 10), false);
      assert.equal(h.server.stats().staleCommands, before + 1);
      assert.equal(s.setTimeout(10), s); // a closed session's own method does nothing
      assert.equal(h.server.stats().staleCommands, before + 1);
    });

    it('a timeout set on many sessions fires for each of them, and only once', async () => {
      const h = await startServer(driver);
      const fired = new Map<number, number>();
      h.server.on('timeout', (s) => fired.set(s.id, (fired.get(s.id) ?? 0) + 1));
      const N = 50;
      const sockets = await Promise.all(Array.from({ length: N }, () => connect(h.port)));
      await h.waitSessions(N);
      h.sessions.forEach((s, i) => s.setTimeout(50 + (i % 5) * 20));
      await waitFor(() => fired.size === N, 5_000, `'timeout' for all ${N} sessions (have ${fired.size})`);
      await delay(300);
      for (const [id, n] of fired) assert.equal(n, 1, `session ${id} timed out ${n} times`);
      assert.equal(sockets.length, N);
    });

    it("idleTimeout closes a quiet session with 'timeout' at its millisecond deadline", async () => {
      const h = await startServer(driver, { idleTimeout: 300 });
      const client = await connect(h.port);
      const t0 = Date.now();
      await h.waitSessions(1);
      const rec = await h.waitClose(h.sessions[0].id, 5_000);
      const after = rec.at - t0;
      assert.equal(rec.reason, 'timeout');
      assert.ok(after >= 290 && after < 300 + LATE_MS, `closed after ${after} ms`);
      assert.ok(client.readableEnded || client.destroyed || true);
    });

    it('a client session times out too', async () => {
      const srv = net.createServer(() => undefined);
      await new Promise<void>((resolve) => srv.listen(0, HOST4, resolve));
      try {
        const client = trackClient(createClient({ driver }));
        let fired = 0;
        client.on('timeout', () => fired++);
        const port = (srv.address() as net.AddressInfo).port;
        const s = await client.connect(port, HOST4);
        const t0 = Date.now();
        s.setTimeout(100);
        await waitFor(() => fired === 1, 5_000, "the client session's 'timeout'");
        assert.ok(Date.now() - t0 >= 99);
        s.pause();
        assert.equal(s.isPaused(), true);
        s.resume();
      } finally {
        for (const c of [srv]) c.close();
      }
    });
  });
}
