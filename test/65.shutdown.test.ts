import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';

import { createServer } from '../src/index';
import {
  DRIVERS,
  HOST4,
  assertRejectsCode,
  blockJsThread,
  cleanup,
  connect,
  connectMany,
  connectNoWait,
  randomBytes,
  reader,
  startServer,
  track,
  waitFor,
  withTimeout,
} from './helpers';

const MiB = 1024 * 1024;

for (const driver of DRIVERS) {
  describe(`server.close() (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    it("closes every live session with reason 'shutdown' before its promise resolves, and the clients see the end", async () => {
      const h = await startServer(driver);
      const clients = await connectMany(h.port, 20);
      const readers = clients.map((c) => reader(c));
      await h.waitSessions(20);
      let closeEvent = false;
      let closesAtCloseEvent = -1;
      h.server.on('close', () => {
        closeEvent = true;
        closesAtCloseEvent = h.closes.length;
      });
      let resolvedWith = -1;
      await withTimeout(
        h.server.close().then(() => {
          resolvedWith = h.closes.length;
        }),
        10_000,
        'server.close()',
      );
      assert.equal(resolvedWith, 20, 'close() resolved before every session was reported closed');
      assert.deepEqual(
        h.closes.map((c) => c.reason),
        Array<string>(20).fill('shutdown'),
      );
      assert.ok(h.sessions.every((s) => s.closed));
      assert.equal(closeEvent, true, "no 'close' event");
      assert.equal(closesAtCloseEvent, 20, "'close' came before the sessions' close events");
      await Promise.all(readers.map((r) => r.waitEnd(5_000)));
      assert.equal(h.server.listening, false);
    });

    it('while close() flushes a session, send() returns false on both drivers and only the bytes sent before close() arrive', async () => {
      const h = await startServer(driver, { maxQueuedBytes: 64 * MiB });
      const stale: number[] = [];
      h.server.on('staleCommand', (id) => stale.push(id));
      const client = await connect(h.port);
      client.pause();
      await h.waitSessions(1);
      const s = h.sessions[0];
      const before = randomBytes(16 * MiB);
      s.send(before);
      await waitFor(() => s.bufferedAmount > 0, 5_000, 'bytes queued behind the paused client');
      const closing = h.server.close();
      const answers = [
        s.send('late 1'),
        h.server.send(s.id, 'late 2'),
        h.server.broadcast('late 3') > 0,
        h.server.broadcast('late 4', [s.id]) > 0,
      ];
      assert.deepEqual(answers, [false, false, false, false], 'a send after close() was accepted although its bytes cannot go out');
      const r = reader(client);
      client.resume();
      await withTimeout(closing, 10_000, 'server.close()');
      await r.waitEnd();
      assert.equal(r.lengthAtEnd, before.length);
      assert.ok(r.bytes().equals(before), 'the bytes sent before close() did not arrive intact, or later bytes did');
      assert.equal(h.closeById.get(s.id)?.reason, 'shutdown');
      assert.deepEqual(stale, []);
    });

    it('a session reported after close() (accepted before it reached the I/O thread) refuses sends too', async () => {
      const h = await startServer(driver);
      let closeCalled = false;
      const answers: boolean[] = [];
      h.server.on('session', (s) => {
        if (closeCalled) answers.push(s.send('hello'));
      });
      const stale: number[] = [];
      h.server.on('staleCommand', (id) => stale.push(id));
      const clients = Array.from({ length: 5 }, () => connectNoWait(h.port));
      const readers = clients.map((c) => reader(c));
      // node:net issues the connects in ticks queued before this one; then
      // JS stays busy while the threaded driver's I/O thread accepts them and
      // queues their 'session' events, which JS only sees after close().
      await new Promise((resolve) => process.nextTick(resolve));
      blockJsThread(200);
      closeCalled = true;
      const closing = h.server.close();
      await withTimeout(closing, 10_000, 'server.close()');
      await Promise.all(readers.map((rd) => rd.waitClose(5_000)));
      assert.ok(
        answers.every((a) => !a),
        `send() in a 'session' handler after close() returned ${JSON.stringify(answers)}`,
      );
      assert.ok(
        readers.every((rd) => rd.length === 0),
        'bytes sent after close() arrived',
      );
      assert.deepEqual(stale, []);
      // Threaded: the I/O thread accepts while JS is blocked, until its
      // batches in flight to JS run out (then it waits, and close() resets
      // the rest); at least one session must have been reported after close().
      if (driver === 'threaded') assert.ok(answers.length > 0, 'no session accepted while JS was blocked was reported after close()');
    });

    it('refuses a new connection once closed (the listener is gone)', async () => {
      const h = await startServer(driver);
      await h.server.close();
      const err = await new Promise<Error | null>((resolve) => {
        const s = net.connect({ port: h.port, host: HOST4 });
        s.once('error', (e) => resolve(e));
        s.once('connect', () => {
          s.destroy();
          resolve(null);
        });
      });
      assert.ok(err !== null, 'a connection succeeded after close()');
      assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    });

    it('after close(), listen() rejects with ERR_ACCEPTPOOL_SERVER_CLOSED', async () => {
      const h = await startServer(driver);
      await h.server.close();
      await assertRejectsCode(h.server.listen(0, HOST4), 'ERR_ACCEPTPOOL_SERVER_CLOSED', 'listen after close');
    });

    it('after close(), send/closeSession/broadcast to former ids return false / 0 and stats() still works', async () => {
      const h = await startServer(driver);
      await connectMany(h.port, 3);
      await h.waitSessions(3);
      const ids = h.sessions.map((s) => s.id);
      await h.server.close();
      for (const id of ids) {
        assert.equal(h.server.send(id, 'x'), false);
        assert.equal(h.server.closeSession(id), false);
        assert.equal(h.sessions.find((s) => s.id === id)?.send('y'), false);
      }
      assert.equal(h.server.broadcast('z'), 0);
      assert.equal(h.server.broadcast('z', ids), 0);
      const st = h.server.stats();
      assert.equal(st.inUse, 0);
      assert.equal(st.accepts, 3);
      assert.equal(st.driver, driver);
    });

    it('close() twice resolves both promises; close() of a server that never listened resolves', async () => {
      const h = await startServer(driver);
      const a = h.server.close();
      const b = h.server.close();
      await withTimeout(Promise.all([a, b]), 5_000, 'both close() promises');
      await withTimeout(h.server.close(), 5_000, 'a third close()');
      const idle = track(createServer({ driver }));
      let closed = false;
      idle.on('close', () => {
        closed = true;
      });
      await withTimeout(idle.close(), 5_000, 'close() of an idle server');
      await waitFor(() => closed, 1_000, "'close' event of an idle server");
      await assertRejectsCode(idle.listen(0, HOST4), 'ERR_ACCEPTPOOL_SERVER_CLOSED', 'listen after close of an idle server');
    });

    it('close() called from inside a data handler closes every session and resolves', async () => {
      const h = await startServer(driver);
      const clients = await connectMany(h.port, 5);
      const readers = clients.map((c) => reader(c));
      await h.waitSessions(5);
      let closing: Promise<void> | null = null;
      h.server.on('data', (s) => {
        s.send('last');
        if (closing === null) closing = h.server.close();
      });
      clients[0].write('trigger');
      await waitFor(() => closing !== null, 5_000, 'the data handler to call close()');
      await withTimeout(closing as unknown as Promise<void>, 10_000, 'close() from a handler');
      assert.equal(h.closes.length, 5);
      assert.ok(h.closes.every((c) => c.reason === 'shutdown'));
      await Promise.all(readers.map((r) => r.waitEnd(5_000)));
    });

    it('close() while listen() is still resolving its host makes listen() reject with ERR_ACCEPTPOOL_SERVER_CLOSED', async () => {
      const server = track(createServer({ driver }));
      const listening = server.listen(0, 'localhost');
      await withTimeout(server.close(), 5_000, 'close during listen');
      await assertRejectsCode(listening, 'ERR_ACCEPTPOOL_SERVER_CLOSED', 'listen interrupted by close');
      assert.equal(server.listening, false);
      assert.equal(server.address(), null);
    });

    it('after close(), the same port can be listened on again at once', async () => {
      const h = await startServer(driver);
      const clients = await connectMany(h.port, 3);
      await h.waitSessions(3);
      await h.server.close();
      for (const c of clients) c.destroy();
      const again = track(createServer({ driver }));
      const address = await again.listen(h.port, HOST4);
      assert.equal(address.port, h.port);
    });

    it('close() releases every descriptor the server opened', async () => {
      const fds = (): number => fs.readdirSync('/proc/self/fd').length;
      const before = fds();
      const server = createServer({ driver });
      const { port } = await server.listen(0, HOST4);
      const clients = await connectMany(port, 10);
      await waitFor(() => server.stats().inUse === 10, 5_000, '10 sessions');
      assert.ok(fds() >= before + 20, 'the sessions hold no descriptors?');
      await withTimeout(server.close(), 5_000, 'server.close()');
      for (const c of clients) c.destroy();
      await waitFor(() => clients.every((c) => c.closed), 5_000, 'clients to close');
      await waitFor(() => fds() <= before, 5_000, `descriptors back to ${before} (have ${fds()})`);
    });
  });
}
