/**
 * Receive-side flow control: session.pause() stops reading that session in
 * native code, so the kernel's receive buffer fills and TCP makes the sender
 * wait, and nothing piles up in the process; resume() reads on, in order.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type * as net from 'node:net';

import { binding } from '../src/native';
import type { Session } from '../src/index';
import { DRIVERS, assertThrowsCode, blockJsThread, cleanup, connect, delay, startServer, waitFor } from './helpers';
import type { Harness } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * What may still arrive after pause(): what native code had already read for
 * the session and not yet handed to JS. One read per session per batch, of
 * at most readChunk bytes; inline, only the batch being delivered, threaded,
 * every batch in flight.
 */
function pauseBound(driver: string): number {
  const { readChunk, threadedBatches } = binding.wire;
  return driver === 'inline' ? readChunk : threadedBatches * readChunk;
}

/** Writes `payload` as fast as the socket takes it; resolves when all of it is handed to the kernel. */
function pump(socket: net.Socket, payload: Buffer, chunk = 64 * KiB): Promise<void> {
  return new Promise((resolve, reject) => {
    let at = 0;
    const more = (): void => {
      while (at < payload.length) {
        const part = payload.subarray(at, at + chunk);
        at += part.length;
        if (!socket.write(part)) {
          socket.once('drain', more);
          return;
        }
      }
      socket.end(resolve);
    };
    socket.once('error', reject);
    more();
  });
}

/** Every chunk the server receives, copied, and their total. */
function collect(h: Harness): { got: Buffer[]; received: number } {
  const sink = { got: [] as Buffer[], received: 0 };
  h.server.on('data', (_s, chunk) => {
    sink.got.push(Buffer.from(chunk));
    sink.received += chunk.length;
  });
  return sink;
}

/** Bytes the sender's kernel has taken (written minus what node:net still buffers). */
function takenByKernel(socket: net.Socket): number {
  return socket.bytesWritten - socket.writableLength;
}

for (const driver of DRIVERS) {
  describe(`pause() and resume() (${driver} driver)`, function () {
    this.timeout(60_000);
    afterEach(cleanup);

    it('while paused the sender stalls and the server holds at most the in-flight bound; after resume every byte arrives in order', async () => {
      const h = await startServer(driver, {}, { record: false });
      h.server.on('session', (s) => s.pause());
      const sink = collect(h);
      const client = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.isPaused(), true);
      const payload = crypto.randomBytes(32 * MiB);
      const sent = pump(client, payload);
      // The sender fills its buffers and the receiver's kernel buffer, then stops.
      await delay(500);
      const takenAt500 = takenByKernel(client);
      const rssAt500 = process.memoryUsage().rss;
      await delay(500);
      const taken = takenByKernel(client);
      assert.equal(taken, takenAt500, `the sender's kernel kept taking bytes (${takenAt500} -> ${taken}): nothing pushes back`);
      assert.ok(
        taken < payload.length / 2,
        `the sender handed ${taken} of ${payload.length} bytes to the kernel while the server was paused`,
      );
      assert.ok(sink.received <= pauseBound(driver), `${sink.received} bytes reached JS while paused (bound ${pauseBound(driver)})`);
      const stats = h.server.stats();
      assert.ok(stats.bytesIn <= pauseBound(driver), `native code read ${stats.bytesIn} bytes while paused`);
      assert.ok(process.memoryUsage().rss - rssAt500 < 8 * MiB, 'the process grew while the session was paused');

      s.resume();
      assert.equal(s.isPaused(), false);
      await sent;
      await waitFor(() => sink.received === payload.length, 30_000, `every byte after resume (have ${sink.received} of ${payload.length})`);
      const hash = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
      assert.equal(hash(Buffer.concat(sink.got)), hash(payload), 'the bytes arrived corrupted or out of order');
    });

    it('pause and resume repeatedly while data flows: nothing lost, nothing reordered', async () => {
      const h = await startServer(driver, {}, { record: false });
      const sink = collect(h);
      const client = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      const payload = crypto.randomBytes(8 * MiB);
      const sent = pump(client, payload);
      const toggler = setInterval(() => (s.isPaused() ? s.resume() : s.pause()), 3);
      try {
        await waitFor(() => sink.received >= payload.length / 2, 30_000, 'half the bytes');
      } finally {
        clearInterval(toggler);
      }
      s.resume();
      await sent;
      await waitFor(() => sink.received === payload.length, 30_000, `every byte (have ${sink.received} of ${payload.length})`);
      assert.ok(Buffer.concat(sink.got).equals(payload), 'the bytes arrived corrupted or out of order');
    });

    it("a paused session still sends, still sees the peer's close, and a graceful close while paused completes", async () => {
      const h = await startServer(driver, { closeLinger: 2_000 });
      const client = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      s.pause();
      const echoed: Buffer[] = [];
      client.on('data', (b: Buffer) => echoed.push(b));
      assert.equal(s.send('while paused'), true);
      await waitFor(() => Buffer.concat(echoed).toString() === 'while paused', 5_000, 'bytes sent by a paused session');
      client.write('unread');
      await delay(100);
      assert.equal(h.receivedBytes(s.id).length, 0, 'a paused session was read');
      assert.equal(s.close(), true);
      client.end();
      const rec = await h.waitClose(s.id, 5_000);
      assert.equal(rec.reason, 'local');
    });

    it("end() then the peer's FIN while paused: the unread bytes still arrive after resume, then the close", async () => {
      const h = await startServer(driver, { allowHalfOpen: true });
      const client = await connect(h.port);
      client.allowHalfOpen = true;
      await h.waitSessions(1);
      const s = h.sessions[0];
      s.pause();
      let ended = false;
      h.server.on('end', () => (ended = true));
      assert.equal(s.end(), true);
      await new Promise<void>((resolve) => client.once('end', resolve));
      client.end('last words');
      // Both directions are shut now, with bytes unread in the kernel.
      await delay(200);
      assert.equal(s.closed, false, 'a paused session was closed before its bytes were read');
      assert.equal(ended, false);
      s.resume();
      const rec = await h.waitClose(s.id, 5_000);
      assert.equal(h.receivedBytes(s.id).toString(), 'last words');
      assert.equal(ended, true);
      assert.equal(rec.reason, 'local');
    });

    it("pauseSession(id) and resumeSession(id) work by id; stale ids are refused and counted, and never reach the slot's next occupant", async () => {
      const h = await startServer(driver, { poolSize: 16, poolGrowth: 16 });
      const first = await connect(h.port);
      await h.waitSessions(1);
      const old = h.sessions[0];
      assert.equal(h.server.pauseSession(old.id), true);
      assert.equal(old.isPaused(), true);
      first.write('held');
      await delay(100);
      assert.equal(h.receivedBytes(old.id).length, 0);
      assert.equal(h.server.resumeSession(old.id), true);
      await waitFor(() => h.receivedBytes(old.id).toString() === 'held', 5_000, 'bytes after resumeSession');
      first.destroy();
      await h.waitClose(old.id);

      // The old id's slot serves the next client (lowest slot first).
      const second = await connect(h.port);
      await h.waitSessions(2);
      const next = h.sessions[1];
      assert.equal(next.id % 2 ** 24, old.id % 2 ** 24, 'the slot was not reused');
      const before = h.server.stats().staleCommands;
      assert.equal(h.server.pauseSession(old.id), false);
      assert.equal(h.server.resumeSession(old.id), false);
      assert.equal(h.server.stats().staleCommands, before + 2);
      old.pause(); // a closed session's own methods do nothing
      assert.equal(h.server.stats().staleCommands, before + 2);
      second.write('new occupant');
      await waitFor(() => h.receivedBytes(next.id).toString() === 'new occupant', 5_000, 'the new occupant reads');
      assert.equal(next.isPaused(), false);
    });

    it('a pause that reaches native code after the session closed there is refused in native code', async () => {
      const h = await startServer(driver);
      const staleEvents: [number, string][] = [];
      h.server.on('staleCommand', (id, command) => staleEvents.push([id, command]));
      const client = await connect(h.port);
      await h.waitSessions(1);
      const s: Session = h.sessions[0];
      const before = h.server.stats().staleCommands;
      client.resetAndDestroy();
      // Threaded: the I/O thread closes the session while JS still thinks it open.
      blockJsThread(300);
      const accepted = h.server.pauseSession(s.id);
      await h.waitClose(s.id);
      if (driver === 'threaded') {
        assert.equal(accepted, true, 'JS could not know yet');
        await waitFor(() => staleEvents.length === 1, 5_000, "a 'staleCommand' event");
        assert.deepEqual(staleEvents[0], [s.id, 'pause']);
        await waitFor(() => h.server.stats().staleCommands === before + 1, 5_000, 'staleCommands + 1');
      } else {
        // Inline does no I/O while JS is blocked: the pause met the live session.
        assert.equal(accepted, true);
      }
      assert.equal(h.server.pauseSession(s.id), false);
    });

    it('bad ids are refused with ERR_ACCEPTPOOL_INVALID_ARG', async () => {
      const h = await startServer(driver);
      for (const bad of [-1, 1.5, NaN, '1', null, undefined, 2 ** 53]) {
        assertThrowsCode(() => h.server.pauseSession(bad as number), 'ERR_ACCEPTPOOL_INVALID_ARG', `pauseSession(${String(bad)})`);
        assertThrowsCode(() => h.server.resumeSession(bad as number), 'ERR_ACCEPTPOOL_INVALID_ARG', `resumeSession(${String(bad)})`);
      }
    });
  });
}
