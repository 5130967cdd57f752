/**
 * How client sessions end: client.close() (with live sessions and with
 * connects in flight), and the close reasons a client reports when either
 * side closes or resets.
 */
import * as assert from 'node:assert/strict';

import { AcceptPoolSystemError } from '../src/index';
import type { CloseReason } from '../src/index';
import { DRIVERS, HOST4, codeOf, delay, randomBytes, startEcho, startServer, waitFor, withTimeout } from './helpers';
import { assertFailsCode, cleanupAll, connectOk, havePython, startBlackhole, startClient } from './client-helpers';

const CLOSED = 'ERR_ACCEPTPOOL_CLIENT_CLOSED';

for (const driver of DRIVERS) {
  describe(`client.close() (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanupAll);

    it("closes every live session with reason 'shutdown' before its promise resolves, then emits 'close'", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      await Promise.all(Array.from({ length: 10 }, () => connectOk(h, srv.port)));
      await srv.waitSessions(10);
      let closeEvent = -1;
      h.client.on('close', () => {
        closeEvent = h.closes.length;
      });
      let closesAtResolve = -1;
      await withTimeout(
        h.client.close().then(() => {
          closesAtResolve = h.closes.length;
        }),
        10_000,
        'client.close()',
      );
      assert.equal(closesAtResolve, 10, 'close() resolved before every session was reported closed');
      assert.deepEqual(
        h.closes.map((c) => c.reason),
        Array<CloseReason>(10).fill('shutdown'),
      );
      assert.ok(h.sessions.every((s) => s.closed));
      assert.equal(closeEvent, 10, "no 'close' event, or it came before the sessions' close events");
    });

    it('ends every session gracefully: the server sees each close as remote', async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      await Promise.all(Array.from({ length: 10 }, () => connectOk(h, srv.port)));
      await srv.waitSessions(10);
      await withTimeout(h.client.close(), 10_000, 'client.close()');
      await srv.waitCloses(10);
      assert.deepEqual(
        srv.closes.map((c) => c.reason),
        Array<CloseReason>(10).fill('remote'),
      );
    });

    it('delivers bytes queued before close() to the server first', async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port);
      const payload = randomBytes(2 * 1024 * 1024);
      h.client.send(s.id, payload);
      await withTimeout(h.client.close(), 10_000, 'client.close()');
      await srv.waitSessions(1);
      const id = srv.sessions[0].id;
      await srv.waitClose(id);
      assert.ok(
        srv.receivedBytes(id).equals(payload),
        `the server received ${srv.receivedBytes(id).length} of ${payload.length} queued bytes`,
      );
    });

    it('after close(), connect() fails with ERR_ACCEPTPOOL_CLIENT_CLOSED', async () => {
      const srv = await startEcho(driver);
      const h = startClient(driver);
      await connectOk(h, srv.port);
      await h.client.close();
      await assertFailsCode(() => h.client.connect(srv.port, HOST4), CLOSED, 'connect after close');
      await assertFailsCode(() => h.client.connect(srv.port, 'localhost'), CLOSED, 'connect by name after close');
    });

    it('a client that never connected closes at once, and connect() then fails with ERR_ACCEPTPOOL_CLIENT_CLOSED', async () => {
      const h = startClient(driver);
      await withTimeout(Promise.all([h.client.close(), h.client.close()]), 2_000, 'close() twice on an idle client');
      await assertFailsCode(() => h.client.connect(80, HOST4), CLOSED, 'connect after close');
    });

    it('a connect in flight (to a listener that never answers) when close() is called rejects with ERR_ACCEPTPOOL_CLIENT_CLOSED', async function () {
      if (!havePython()) this.skip();
      const bh = await startBlackhole();
      const h = startClient(driver);
      const inFlight = h.client.connect(bh.port, bh.host);
      // Make sure it really is in flight: not settled after a while.
      let settled = false;
      inFlight.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await delay(200);
      assert.equal(settled, false, 'the connect settled before close(); the test proves nothing');
      const closing = h.client.close();
      await assertFailsCode(() => inFlight, CLOSED, 'connect in flight during close()');
      await withTimeout(closing, 10_000, 'client.close() with a connect in flight');
      assert.equal(h.sessions.length, 0, "a connect in flight emitted 'session' after close()");
      assert.equal(h.client.stats().inUse, 0);
    });

    it('a connect still resolving its host name when close() is called rejects with ERR_ACCEPTPOOL_CLIENT_CLOSED and opens nothing', async () => {
      const srv = await startServer(driver, {}, { host: '::' });
      const h = startClient(driver);
      const inFlight = h.client.connect(srv.port, 'localhost');
      const closing = h.client.close();
      await assertFailsCode(() => inFlight, CLOSED, 'connect resolving a name during close()');
      await withTimeout(closing, 10_000, 'client.close()');
      await delay(100);
      assert.equal(srv.sessions.length, 0, 'the server got a connection from a closed client');
      assert.equal(h.client.stats().connects, 0);
    });

    it('after close(), send and closeSession to former ids return false, and stats() still answers', async () => {
      const srv = await startEcho(driver);
      const h = startClient(driver);
      const sessions = await Promise.all(Array.from({ length: 3 }, () => connectOk(h, srv.port)));
      await h.client.close();
      for (const s of sessions) {
        assert.equal(h.client.send(s.id, 'x'), false);
        assert.equal(h.client.closeSession(s.id), false);
        assert.equal(s.send('x'), false);
      }
      const st = h.client.stats();
      assert.equal(st.connects, 3);
      assert.equal(st.inUse, 0);
    });
  });

  describe(`close reasons seen from the client (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanupAll);

    it("the server's closeSession() closes the client session with reason 'remote' and no error, after an 'end'", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port);
      await srv.waitSessions(1);
      assert.equal(srv.server.closeSession(srv.sessions[0].id), true);
      const rec = await h.waitClose(s.id);
      assert.equal(rec.reason, 'remote');
      assert.equal(rec.err, undefined);
      assert.ok(h.ended.has(s.id), "no 'end' event before the close");
      assert.equal(s.closed, true);
    });

    it("the server's session.destroy() closes the client session with reason 'reset' and an ECONNRESET error", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port);
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].destroy(), true);
      const rec = await h.waitClose(s.id);
      assert.equal(rec.reason, 'reset');
      assert.ok(rec.err instanceof AcceptPoolSystemError, `err is ${String(rec.err)}`);
      assert.equal(codeOf(rec.err), 'ECONNRESET');
      assert.ok(rec.err.errno < 0);
    });

    it("the client's closeSession() closes with reason 'local' on the client and 'remote' on the server", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port);
      await srv.waitSessions(1);
      assert.equal(h.client.closeSession(s.id), true);
      assert.equal((await h.waitClose(s.id)).reason, 'local');
      assert.equal((await srv.waitClose(srv.sessions[0].id)).reason, 'remote');
      assert.equal(h.client.closeSession(s.id), false, 'closing the same id again must be refused');
    });

    it("the client's Session.destroy() closes with reason 'local' on the client and 'reset' on the server", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port);
      await srv.waitSessions(1);
      assert.equal(s.destroy(), true);
      assert.equal((await h.waitClose(s.id)).reason, 'local');
      assert.equal((await srv.waitClose(srv.sessions[0].id)).reason, 'reset');
    });

    it("with allowHalfOpen, a client session gets 'end' when the server half-closes and can still send until it closes", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver, { allowHalfOpen: true });
      const s = await connectOk(h, srv.port);
      await srv.waitSessions(1);
      const serverSide = srv.sessions[0];
      assert.equal(serverSide.end(), true);
      await waitFor(() => h.ended.has(s.id), 5_000, "the client's 'end'");
      await delay(100);
      assert.equal(h.closeById.get(s.id), undefined, 'the half-closed client session was closed');
      assert.equal(h.client.send(s.id, 'after your end'), true);
      await waitFor(() => srv.receivedBytes(serverSide.id).length >= 14, 5_000, 'bytes sent after the end');
      assert.equal(srv.receivedBytes(serverSide.id).toString(), 'after your end');
      assert.equal(h.client.closeSession(s.id), true);
      assert.equal((await h.waitClose(s.id)).reason, 'local');
      // The server began the close with its end(): either reason is fair there.
      const rec = await srv.waitClose(serverSide.id);
      assert.ok(rec.reason === 'local' || rec.reason === 'remote', `server reason ${rec.reason}`);
    });

    it("without allowHalfOpen, a client session answers the server's half-close by closing ('remote')", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port);
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].end(), true);
      const rec = await h.waitClose(s.id);
      assert.equal(rec.reason, 'remote');
      assert.ok(h.ended.has(s.id));
      await srv.waitClose(srv.sessions[0].id);
    });

    it("a session's own ondata and onclose handlers see its bytes and its close reason", async () => {
      const srv = await startServer(driver);
      srv.server.on('session', (x) => {
        x.send('bye');
        x.close();
      });
      const h = startClient(driver);
      const chunks: Buffer[] = [];
      let reason: CloseReason | null = null;
      // Set in 'session', which comes before any of the session's bytes.
      h.client.once('session', (x) => {
        x.ondata = (chunk) => chunks.push(Buffer.from(chunk));
        x.onclose = (r) => {
          reason = r;
        };
      });
      await connectOk(h, srv.port);
      await waitFor(() => reason !== null, 5_000, 'onclose');
      assert.equal(Buffer.concat(chunks).toString(), 'bye');
      assert.equal(reason, 'remote');
    });

    it("idleTimeout closes an idle client session with reason 'timeout' (1000 ms, 1 s resolution)", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver, { idleTimeout: 1000 });
      const t0 = Date.now();
      const s = await connectOk(h, srv.port);
      const rec = await h.waitClose(s.id, 4_000);
      assert.equal(rec.reason, 'timeout');
      assert.ok(rec.at - t0 <= 3_000, `closed only after ${rec.at - t0} ms`);
      assert.ok(rec.at - t0 >= 900, `closed after ${rec.at - t0} ms, before the idle timeout`);
      await waitFor(() => h.client.stats().timeouts === 1, 2_000, 'stats().timeouts 1');
    });
  });
}
