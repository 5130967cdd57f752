import * as assert from 'node:assert/strict';
import type * as net from 'node:net';

import { AcceptPoolSystemError } from '../src/index';
import type { Session } from '../src/index';
import { DRIVERS, cleanup, codeOf, connect, delay, osErrno, reader, startServer, waitFor } from './helpers';
import type { Harness, Reader } from './helpers';

for (const driver of DRIVERS) {
  describe(`close reasons (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    it("a peer reset closes the session with reason 'reset' and an ECONNRESET error", async () => {
      const h = await startServer(driver);
      const client = await connect(h.port);
      await h.waitSessions(1);
      client.resetAndDestroy();
      const rec = await h.waitClose(h.sessions[0].id);
      assert.equal(rec.reason, 'reset');
      assert.ok(rec.err instanceof AcceptPoolSystemError, `err is ${String(rec.err)}`);
      assert.equal(codeOf(rec.err), 'ECONNRESET');
      assert.equal(rec.err.errno, -osErrno('ECONNRESET'), 'errno must be the negative OS number, like Node');
      assert.equal(typeof rec.err.syscall, 'string');
      assert.equal(rec.session.closed, true);
    });

    it("a peer's graceful close closes the session with reason 'remote' and no error", async () => {
      const h = await startServer(driver);
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      client.end();
      const rec = await h.waitClose(h.sessions[0].id);
      assert.equal(rec.reason, 'remote');
      assert.equal(rec.err, undefined);
      await r.waitEnd();
      assert.equal(r.error, undefined);
    });

    it("server.closeSession(id) closes with reason 'local' and the client sees a clean end", async () => {
      const h = await startServer(driver);
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      const id = h.sessions[0].id;
      assert.equal(h.server.closeSession(id), true);
      const rec = await h.waitClose(id);
      assert.equal(rec.reason, 'local');
      assert.equal(rec.err, undefined);
      await r.waitEnd();
      assert.equal(r.error, undefined, 'a graceful close must not reset the client');
      assert.equal(h.server.closeSession(id), false, 'closing the same id again must be refused');
    });

    it('server.closeSession(id) delivers everything queued before it, then ends', async () => {
      const h = await startServer(driver);
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      const payload = Buffer.alloc(2 * 1024 * 1024, 7);
      s.send(payload);
      assert.equal(s.close(), true);
      await r.waitEnd();
      assert.equal(r.lengthAtEnd, payload.length, 'bytes queued before close() were lost');
      assert.equal((await h.waitClose(s.id)).reason, 'local');
    });

    it('send() after server.closeSession(id) returns false and its bytes never arrive', async () => {
      const h = await startServer(driver);
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.send('last words'), true);
      assert.equal(h.server.closeSession(s.id), true);
      const late = s.send('too late');
      await r.waitEnd();
      await delay(100);
      assert.equal(r.text(), 'last words', 'bytes sent after closeSession() reached the client');
      assert.equal(late, false, 'send() after closeSession() reported success although its bytes were dropped');
    });

    it("session.destroy() resets the client (ECONNRESET) and closes with reason 'local'", async () => {
      const h = await startServer(driver);
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      assert.equal(h.sessions[0].destroy(), true);
      await r.waitClose();
      assert.equal(codeOf(r.error), 'ECONNRESET');
      const rec = await h.waitClose(h.sessions[0].id);
      assert.equal(rec.reason, 'local');
    });

    it("an idle session is closed with reason 'timeout' after idleTimeout (1000 ms, 1 s resolution)", async () => {
      const h = await startServer(driver, { idleTimeout: 1000 });
      const t0 = Date.now();
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      const rec = await h.waitClose(h.sessions[0].id, 4_000);
      assert.equal(rec.reason, 'timeout');
      assert.ok(rec.at - t0 <= 2_500, `closed only after ${rec.at - t0} ms`);
      await r.waitEnd();
      await waitFor(() => h.server.stats().timeouts === 1, 2_000, 'stats().timeouts 1');
    });

    it('a session active every 200 ms is not closed by idleTimeout 1000', async () => {
      const h = await startServer(driver, { idleTimeout: 1000 });
      const client = await connect(h.port);
      await h.waitSessions(1);
      const id = h.sessions[0].id;
      for (let i = 0; i < 13; i++) {
        client.write('k');
        await delay(200);
        const rec = h.closeById.get(id);
        assert.equal(
          rec?.reason,
          undefined,
          `an active session was closed (${rec?.reason ?? ''}) after ${(i + 1) * 200} ms; its last activity was at most 200 ms earlier`,
        );
      }
      assert.equal(h.server.stats().timeouts, 0);
    });

    it("closing a session from its 'end' handler closes it with reason 'local' and counts no stale command", async () => {
      const h = await startServer(driver);
      h.server.on('end', (s) => {
        s.close();
      });
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      client.end();
      const rec = await h.waitClose(h.sessions[0].id);
      assert.equal(rec.reason, 'local');
      await r.waitEnd();
      await delay(100);
      assert.equal(h.server.stats().staleCommands, 0, 'the application issued no stale command, yet one was counted');
    });
  });
}

/**
 * The rule for what close(), end() and destroy() return, the same on both
 * drivers: true when the call changed how the session ends, false when it
 * was already ending that way (or further: end() < close() < destroy()) or
 * is gone. destroy() after close() still resets a session that is flushing.
 */
for (const driver of DRIVERS) {
  describe(`close, end and destroy return values (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    async function oneSession(): Promise<{ h: Harness; s: Session; r: Reader; socket: net.Socket }> {
      const h = await startServer(driver, { maxQueuedBytes: 64 * 1024 * 1024 });
      const socket = await connect(h.port);
      const r = reader(socket);
      await h.waitSessions(1);
      return { h, s: h.sessions[0], r, socket };
    }

    it('a second close() returns false, by session and by id', async () => {
      const { h, s, r } = await oneSession();
      assert.equal(s.close(), true);
      assert.equal(s.close(), false);
      assert.equal(h.server.closeSession(s.id), false);
      assert.equal(s.end(), false, 'end() after close(): already closing further');
      assert.equal((await h.waitClose(s.id)).reason, 'local');
      await r.waitEnd();
      assert.equal(r.error, undefined);
    });

    it('a second end() returns false; close() after end() returns true', async () => {
      const { h, s } = await oneSession();
      assert.equal(s.end(), true);
      assert.equal(s.end(), false);
      assert.equal(s.close(), true);
      assert.equal(s.close(), false);
      await h.waitClose(s.id);
    });

    it('destroy() after close() returns true and resets a session still flushing; a second destroy() returns false', async () => {
      const { h, s, r, socket } = await oneSession();
      socket.pause(); // the peer reads nothing: the flush cannot finish
      s.send(Buffer.alloc(16 * 1024 * 1024, 1));
      assert.equal(s.close(), true);
      await delay(100);
      assert.equal(s.destroy(), true);
      assert.equal(s.destroy(), false);
      assert.equal(s.close(), false);
      assert.equal(s.end(), false);
      assert.equal((await h.waitClose(s.id)).reason, 'local');
      // Had the flush gone on, the peer would now get all 16 MiB and a FIN.
      // (A paused node:net socket reports the reset as a plain end.)
      socket.resume();
      await r.waitClose();
      assert.ok(r.length < 16 * 1024 * 1024, `the peer received all ${r.length} bytes: the graceful close was not reset`);
    });

    it('close(), end() and destroy() after destroy() return false', async () => {
      const { h, s } = await oneSession();
      assert.equal(s.destroy(), true);
      assert.equal(s.close(), false);
      assert.equal(s.end(), false);
      assert.equal(s.destroy(), false);
      await h.waitClose(s.id);
    });

    it("every one returns false once 'sessionClose' has been delivered", async () => {
      const { h, s, socket } = await oneSession();
      socket.end();
      await h.waitClose(s.id);
      assert.equal(s.close(), false);
      assert.equal(s.end(), false);
      assert.equal(s.destroy(), false);
      assert.equal(h.server.closeSession(s.id), false);
    });
  });
}
