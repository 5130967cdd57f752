import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Duplex } from 'node:stream';

import type { Session, SessionSocket } from '../src/index';
import {
  DRIVERS,
  SLOT_MASK,
  assertThrowsCode,
  cleanup,
  codeOf,
  connect,
  delay,
  kernelBufferRoom,
  randomBytes,
  reader,
  startServer,
  waitFor,
  withTimeout,
} from './helpers';
import type { Harness } from './helpers';
import { sha256 } from './http-helpers';

const MiB = 1024 * 1024;

/** A server whose every session becomes a socket (options: toSocket's), kept by session id. */
async function socketServer(
  driver: (typeof DRIVERS)[number],
  options?: Parameters<Session['toSocket']>[0],
): Promise<{ h: Harness; sockets: Map<number, SessionSocket> }> {
  const sockets = new Map<number, SessionSocket>();
  const h = await startServer(
    driver,
    {},
    { record: false, beforeListen: (server) => server.on('session', (s) => sockets.set(s.id, s.toSocket(options))) },
  );
  return { h, sockets };
}

async function socketOf(h: Harness, sockets: Map<number, SessionSocket>, n = 1): Promise<SessionSocket> {
  await h.waitSessions(n);
  return sockets.get(h.sessions[n - 1].id) as SessionSocket;
}

function collect(socket: SessionSocket): { chunks: Buffer[]; length: () => number } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { chunks, length: () => chunks.reduce((n, c) => n + c.length, 0) };
}

describe('SessionSocket: session.toSocket() as a net.Socket-like Duplex', function () {
  this.timeout(30_000);
  afterEach(cleanup);

  for (const driver of DRIVERS) {
    describe(driver, () => {
      it('one socket per session, a stream.Duplex; bad options and a closed session are refused', async () => {
        const h = await startServer(driver, {}, { record: false });
        const c = await connect(h.port);
        await h.waitSessions(1);
        const s = h.sessions[0];
        assertThrowsCode(
          () => s.toSocket({ allowHalfOpen: 1 } as unknown as { allowHalfOpen: boolean }),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          'non-boolean',
        );
        assertThrowsCode(
          () => s.toSocket({ halfOpen: true } as unknown as { allowHalfOpen: boolean }),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          'unknown option',
        );
        const socket = s.toSocket();
        assert.ok(socket instanceof Duplex);
        assert.equal(s.toSocket(), socket, 'the same socket again');
        assert.equal(socket.session, s);
        c.destroy();
        await h.waitCloses(1);
        const other = await connect(h.port, undefined);
        await h.waitSessions(2);
        other.destroy();
        await h.waitCloses(2);
        assertThrowsCode(() => h.sessions[1].toSocket(), 'ERR_ACCEPTPOOL_INVALID_STATE', 'closed session');
      });

      it('reading: a paused socket pauses its session, the kernel holds the rest, resume() delivers every byte in order', async () => {
        const { h, sockets } = await socketServer(driver);
        const c = await connect(h.port);
        const socket = await socketOf(h, sockets);
        socket.pause();
        const sent = randomBytes(32 * MiB);
        c.write(sent);
        const got = collect(socket);
        await waitFor(() => h.sessions[0].isPaused(), 5_000, 'the session paused');
        await delay(300);
        const inProcess = h.server.stats().bytesIn;
        assert.ok(inProcess < 2 * MiB, `${inProcess} bytes read while paused`);
        assert.ok(socket.readableLength < MiB, `${socket.readableLength} bytes buffered in the socket`);
        assert.equal(got.length(), 0);
        socket.resume();
        await waitFor(() => got.length() === sent.length, 20_000, `every byte (have ${got.length()})`);
        assert.equal(sha256(Buffer.concat(got.chunks)), sha256(sent));
      });

      it('writing: 16 MiB to a peer that does not read waits for drain and never overflows; every byte arrives', async () => {
        const { h, sockets } = await socketServer(driver);
        const c = await connect(h.port);
        c.pause();
        const socket = await socketOf(h, sockets);
        const sent = randomBytes(16 * MiB);
        let written = false;
        assert.equal(
          socket.write(sent, () => {
            written = true;
          }),
          false,
          'write() says wait',
        );
        await delay(500);
        assert.equal(written, false, 'the callback waits while the peer reads nothing');
        assert.equal(h.sessions[0].closed, false, 'no overflow');
        assert.ok(h.sessions[0].bufferedAmount <= 256 * 1024, `${h.sessions[0].bufferedAmount} bytes queued natively`);
        assert.ok(socket.bytesWritten === sent.length, 'bytesWritten counts what is buffered, as net.Socket');
        const drained = new Promise<void>((resolve) => socket.once('drain', resolve));
        const r = reader(c);
        c.resume();
        await r.readExactly(sent.length, 20_000);
        await withTimeout(drained, 5_000, 'drain');
        assert.equal(written, true);
        assert.equal(sha256(r.bytes()), sha256(sent));
        assert.ok(kernelBufferRoom() > 0);
      });

      it('end() half-closes: the peer sees the end and can still send (allowHalfOpen)', async () => {
        const { h, sockets } = await socketServer(driver, { allowHalfOpen: true });
        const c = net.connect({ port: h.port, host: '127.0.0.1', allowHalfOpen: true });
        const r = reader(c);
        const socket = await socketOf(h, sockets);
        const got = collect(socket);
        socket.end('bye');
        await r.waitEnd();
        assert.equal(r.text(), 'bye');
        c.write('after your end');
        await waitFor(() => got.length() === 14, 5_000, 'data after our end');
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        c.end();
        await withTimeout(closed, 5_000, 'socket close');
        assert.equal(Buffer.concat(got.chunks).toString(), 'after your end');
        assert.equal((await h.waitClose(h.sessions[0].id)).reason, 'local');
      });

      it("without allowHalfOpen the peer's FIN ends the readable side, then the socket ends its own", async () => {
        const { h, sockets } = await socketServer(driver);
        const c = net.connect({ port: h.port, host: '127.0.0.1', allowHalfOpen: true });
        const r = reader(c);
        const socket = await socketOf(h, sockets);
        const got = collect(socket);
        let ended = false;
        socket.on('end', () => {
          ended = true;
          socket.write('too late?');
        });
        const errors: Error[] = [];
        socket.on('error', (e) => errors.push(e));
        c.end('last words');
        await r.waitEnd();
        assert.equal(ended, true);
        assert.equal(Buffer.concat(got.chunks).toString(), 'last words');
        assert.equal(r.text(), 'too late?', 'what was written on end still went out before our FIN');
        await waitFor(() => socket.destroyed, 5_000, 'the socket closed');
        assert.deepEqual(errors, []);
      });

      it('destroy() is graceful: what the socket wrote is delivered, then FIN; resetAndDestroy() resets', async () => {
        const { h, sockets } = await socketServer(driver);
        const c1 = await connect(h.port);
        const r1 = reader(c1);
        const s1 = await socketOf(h, sockets, 1);
        s1.write('delivered');
        s1.destroy();
        await r1.waitEnd();
        assert.equal(r1.text(), 'delivered');
        const c2 = await connect(h.port);
        const r2 = reader(c2);
        const s2 = await socketOf(h, sockets, 2);
        s2.resetAndDestroy();
        await r2.waitClose();
        assert.equal(codeOf(r2.error), 'ECONNRESET');
      });

      it("a peer's reset: 'error' ECONNRESET, then 'close' with hadError", async () => {
        const { h, sockets } = await socketServer(driver);
        const c = await connect(h.port);
        const socket = await socketOf(h, sockets);
        let error: NodeJS.ErrnoException | undefined;
        socket.on('error', (e) => {
          error = e;
        });
        const hadError = new Promise<boolean>((resolve) => socket.once('close', resolve));
        c.resetAndDestroy();
        assert.equal(await withTimeout(hadError, 5_000, 'close'), true);
        assert.equal(error?.code, 'ECONNRESET');
      });

      it("setTimeout(): 'timeout' after the idle time, the socket stays open; 0 turns it off", async () => {
        const { h, sockets } = await socketServer(driver);
        const c = await connect(h.port);
        const socket = await socketOf(h, sockets);
        let fired = 0;
        const onTimeout = (): void => {
          fired++;
        };
        const started = Date.now();
        assert.equal(socket.setTimeout(150, onTimeout), socket);
        assert.equal(socket.timeout, 150);
        await waitFor(() => fired === 1, 5_000, "'timeout'");
        assert.ok(Date.now() - started >= 140, `after ${Date.now() - started} ms`);
        assert.equal(socket.destroyed, false, 'not closed by the timeout');
        const r = reader(c);
        socket.write('still open');
        await r.readExactly(10);
        socket.setTimeout(0, onTimeout);
        assert.equal(socket.timeout, undefined);
        assert.equal(socket.listenerCount('timeout'), 0);
        assert.equal(socket.setNoDelay(false), socket);
        assert.equal(socket.setKeepAlive(true, 1000), socket);
        await delay(300);
        assert.equal(fired, 1);
      });

      it("the generation promise: a stale id never reaches the socket of the slot's next occupant", async () => {
        const { h, sockets } = await socketServer(driver);
        const ca = await connect(h.port);
        const a = await socketOf(h, sockets, 1);
        const idA = a.session.id;
        const aData = collect(a);
        const aClosed = new Promise<void>((resolve) => a.once('close', () => resolve()));
        a.on('error', () => undefined);
        ca.destroy();
        await withTimeout(aClosed, 5_000, 'socket A closed');
        await h.waitCloses(1);
        const cb = await connect(h.port);
        const rb = reader(cb);
        const b = await socketOf(h, sockets, 2);
        assert.equal(b.session.id & SLOT_MASK, idA & SLOT_MASK, "B took A's slot");
        assert.notEqual(b.session.id, idA);
        const stale0 = h.server.stats().staleCommands;
        // Every command through A's id is refused: none reaches B.
        assert.equal(a.session.send('for A'), false);
        assert.equal(h.server.send(idA, 'for A'), false);
        a.session.pause();
        assert.equal(h.server.pauseSession(idA), false);
        assert.ok(h.server.stats().staleCommands > stale0, 'counted as stale');
        const bData = collect(b);
        cb.write('to B');
        await waitFor(() => bData.length() === 4, 5_000, 'B reads (not paused by A)');
        assert.equal(b.session.isPaused(), false);
        b.write('from B');
        await rb.readExactly(6);
        await delay(100);
        assert.equal(rb.text(), 'from B', 'B got only its own bytes');
        assert.equal(aData.length(), 0, "A saw none of B's data");
      });

      it('handoff(net.Server): every session is a connection there; bad targets and a second handoff are refused', async () => {
        const target = net.createServer((socket) => socket.pipe(socket));
        const h = await startServer(driver, {}, { record: false, beforeListen: (server) => server.handoff(target) });
        assertThrowsCode(() => h.server.handoff(target), 'ERR_ACCEPTPOOL_INVALID_STATE', 'second handoff');
        assertThrowsCode(() => h.server.handoff({} as unknown as net.Server), 'ERR_ACCEPTPOOL_INVALID_ARG', 'no emit()');
        const c = await connect(h.port);
        const r = reader(c);
        const sent = randomBytes(2 * MiB);
        c.write(sent);
        await r.readExactly(sent.length);
        assert.equal(sha256(r.bytes()), sha256(sent));
      });
    });
  }
});
