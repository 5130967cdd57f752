/**
 * Bad input to every public function: misuse throws (or rejects) with a
 * stable code, and leaves the server working (no leaked slot, echo intact).
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { inspect } from 'node:util';

import { AcceptPoolSystemError, createClient, createServer } from '../src/index';
import { OPTION_RANGES, maxThreads } from '../src/options';
import type { Server, ServerOptions } from '../src/index';
import {
  DRIVERS,
  HOST4,
  assertRejectsCode,
  assertThrowsCode,
  cleanup,
  codeOf,
  connect,
  osErrno,
  reader,
  startEcho,
  track,
  withTimeout,
} from './helpers';
import type { Harness } from './helpers';

const INVALID = 'ERR_ACCEPTPOOL_INVALID_ARG';

/** Options as a caller without types might pass them. */
function untyped(o: Record<string, unknown>): ServerOptions {
  return o;
}

/** Calls a server method with arguments its types would not allow. */
function callUntyped(server: Server, method: 'send' | 'closeSession' | 'broadcast', ...args: unknown[]): unknown {
  return (server as unknown as Record<typeof method, (...a: unknown[]) => unknown>)[method](...args);
}

/** The server still echoes a fresh message and its slot count adds up. */
async function assertStillWorks(h: Harness, what: string): Promise<void> {
  const openBefore = h.open.size;
  const c = await connect(h.port);
  const r = reader(c);
  const msg = `still working after ${what}`;
  c.write(msg);
  assert.equal((await r.readExactly(msg.length, 5_000)).toString(), msg);
  assert.equal(h.open.size, openBefore + 1);
  const st = h.server.stats();
  assert.equal(st.inUse, h.open.size, `stats().inUse ${st.inUse} but ${h.open.size} sessions are open: a leaked slot`);
  c.destroy();
}

const NUMERIC_OPTIONS: readonly string[] = [
  'maxConnections',
  'poolSize',
  'poolGrowth',
  'backlog',
  'highWaterMark',
  'maxQueuedBytes',
  'acceptBatch',
  'idleTimeout',
  'shrinkDelay',
  'closeLinger',
];

for (const driver of DRIVERS) {
  describe(`bad input (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    describe('createServer()', () => {
      it('throws ERR_ACCEPTPOOL_INVALID_ARG for an unknown option', () => {
        assertThrowsCode(() => createServer(untyped({ driver, poolsize: 16 })), INVALID, 'misspelt poolSize');
        assertThrowsCode(() => createServer(untyped({ driver, port: 80 })), INVALID, 'port as an option');
      });

      it('throws ERR_ACCEPTPOOL_INVALID_ARG when options is not a plain object', () => {
        for (const o of ['x', 5, true, null, [], () => 1]) {
          assertThrowsCode(() => createServer(o as unknown as ServerOptions), INVALID, `options ${String(o)}`);
        }
      });

      it('throws ERR_ACCEPTPOOL_INVALID_ARG for numeric options of the wrong type, NaN, infinite, negative or fractional', () => {
        for (const key of NUMERIC_OPTIONS) {
          for (const value of ['16', NaN, Infinity, -Infinity, -1, 1.5, 2 ** 53, true, {}, null]) {
            assertThrowsCode(() => createServer(untyped({ driver, [key]: value })), INVALID, `${key}: ${inspect(value)}`);
          }
        }
      });

      it('throws ERR_ACCEPTPOOL_INVALID_ARG for zero where at least one is needed', () => {
        for (const key of ['maxConnections', 'poolSize', 'poolGrowth', 'backlog', 'maxQueuedBytes', 'acceptBatch']) {
          assertThrowsCode(() => createServer(untyped({ driver, [key]: 0 })), INVALID, `${key}: 0`);
        }
      });

      it('throws ERR_ACCEPTPOOL_INVALID_ARG for non-boolean flags', () => {
        for (const key of ['noDelay', 'allowHalfOpen', 'ipv6Only']) {
          for (const value of [1, 'true', {}, null]) {
            assertThrowsCode(() => createServer(untyped({ driver, [key]: value })), INVALID, `${key}: ${inspect(value)}`);
          }
        }
      });

      it('throws ERR_ACCEPTPOOL_INVALID_ARG when maxQueuedBytes <= highWaterMark', () => {
        assertThrowsCode(() => createServer({ driver, highWaterMark: 1000, maxQueuedBytes: 1000 }), INVALID, 'equal');
        assertThrowsCode(() => createServer({ driver, highWaterMark: 2000, maxQueuedBytes: 1000 }), INVALID, 'below');
        // One above is fine.
        track(createServer({ driver, highWaterMark: 1000, maxQueuedBytes: 1001 }));
      });

      it('accepts every numeric option at both ends of its range, alone and all together, and refuses one past either end by name', async () => {
        const ranges = Object.entries(OPTION_RANGES);
        const clientKeys = new Set([
          'maxConnections',
          'poolSize',
          'poolGrowth',
          'highWaterMark',
          'maxQueuedBytes',
          'idleTimeout',
          'shrinkDelay',
        ]);
        for (const [key, [min, max]] of ranges) {
          // maxQueuedBytes must exceed highWaterMark (64 KiB by default).
          const base = key === 'maxQueuedBytes' ? { driver, highWaterMark: 0 } : { driver };
          for (const value of [min, max]) {
            // A native range error would throw here (a plain TypeError).
            track(createServer(untyped({ ...base, [key]: value })));
            if (clientKeys.has(key)) await createClient(untyped({ ...base, [key]: value })).close();
          }
          for (const value of [min - 1, max + 1]) {
            assertThrowsCode(() => createServer(untyped({ driver, [key]: value })), INVALID, `${key}: ${value}`);
            assert.throws(() => createServer(untyped({ driver, [key]: value })), new RegExp(`options\\.${key} `));
          }
        }
        track(createServer(untyped({ driver, ...Object.fromEntries(ranges.map(([key, [min]]) => [key, min])) })));
        track(createServer(untyped({ driver, ...Object.fromEntries(ranges.map(([key, [, max]]) => [key, max])) })));
        // Once a plain TypeError from the derived maxQueuedBytes (2^30 + 1).
        assertThrowsCode(() => createServer({ driver, highWaterMark: 2 ** 30 }), INVALID, 'highWaterMark 2^30');
        assert.throws(() => createServer({ driver, highWaterMark: 2 ** 30 }), /options\.highWaterMark /);
        // The largest values that do not allocate the whole pool at listen
        // serve clients.
        const big = {
          maxConnections: 2 ** 24,
          backlog: 65535,
          highWaterMark: 2 ** 30 - 1,
          acceptBatch: 65536,
          idleTimeout: 2 ** 31 - 1,
          shrinkDelay: 2 ** 31 - 1,
        };
        const h = await startEcho(driver, big);
        await assertStillWorks(h, 'the largest options');
      });

      it('throws ERR_ACCEPTPOOL_INVALID_ARG for a bad driver or threads value', () => {
        assertThrowsCode(() => createServer(untyped({ driver: 'fast' })), INVALID, "driver 'fast'");
        assertThrowsCode(() => createServer(untyped({ driver: '' })), INVALID, "driver ''");
        assertThrowsCode(() => createServer(untyped({ driver: 1 })), INVALID, 'driver 1');
        assertThrowsCode(() => createServer(untyped({ threads: maxThreads() + 1 })), INVALID, 'threads past the cores');
        assertThrowsCode(() => createServer(untyped({ threads: -1 })), INVALID, 'threads -1');
        assertThrowsCode(() => createServer(untyped({ threads: 1.5 })), INVALID, 'threads 1.5');
        assertThrowsCode(() => createServer(untyped({ threads: 'two' })), INVALID, "threads 'two'");
        const contradicting = driver === 'inline' ? 1 : 0;
        assertThrowsCode(() => createServer({ driver, threads: contradicting }), INVALID, 'threads contradicting driver');
        assert.equal(track(createServer({ threads: driver === 'inline' ? 0 : 1 })).stats().driver, driver);
      });
    });

    describe('listen()', () => {
      it('rejects ERR_ACCEPTPOOL_INVALID_ARG for a bad port, and the server can then listen and echo', async () => {
        const server = track(createServer({ driver }));
        for (const port of [NaN, -1, 70000, 1.5, Infinity, '80', null, undefined, {}]) {
          await assertRejectsCode(server.listen(port as number, HOST4), INVALID, `port ${inspect(port)}`);
        }
        const address = await server.listen(0, HOST4);
        server.on('data', (s, chunk) => {
          s.send(chunk);
        });
        const c = await connect(address.port);
        const r = reader(c);
        c.write('ok');
        assert.equal((await r.readExactly(2)).toString(), 'ok');
      });

      it('rejects ERR_ACCEPTPOOL_INVALID_ARG for a host that is not a non-empty string', async () => {
        const server = track(createServer({ driver }));
        for (const host of [123, {}, '', true, null]) {
          await assertRejectsCode(server.listen(0, host as string), INVALID, `host ${inspect(host)}`);
        }
        assert.equal((await server.listen(0, HOST4)).address, HOST4);
      });

      it('rejects ERR_ACCEPTPOOL_INVALID_STATE when already listening, or while a listen is pending', async () => {
        const server = track(createServer({ driver }));
        const first = server.listen(0, 'localhost');
        await assertRejectsCode(server.listen(0, HOST4), 'ERR_ACCEPTPOOL_INVALID_STATE', 'listen while listen pending');
        const address = await withTimeout(first, 5_000, 'first listen');
        await assertRejectsCode(server.listen(0, HOST4), 'ERR_ACCEPTPOOL_INVALID_STATE', 'second listen');
        assert.deepEqual(server.address(), address);
        assert.equal(server.listening, true);
      });

      it('rejects EADDRINUSE with a negative errno and a syscall for a port in use, and can then listen elsewhere', async () => {
        const blocker = net.createServer();
        await new Promise<void>((resolve) => blocker.listen(0, HOST4, resolve));
        try {
          const port = (blocker.address() as net.AddressInfo).port;
          const server = track(createServer({ driver }));
          const err = await assertRejectsCode(server.listen(port, HOST4), 'EADDRINUSE', 'listen on a port in use');
          assert.ok(err instanceof AcceptPoolSystemError);
          assert.equal(err.errno, -osErrno('EADDRINUSE'));
          assert.equal(err.syscall, 'bind');
          assert.equal(err.port, port);
          assert.equal(err.address, HOST4);
          assert.equal(server.listening, false);
          const ok = await server.listen(0, HOST4);
          assert.notEqual(ok.port, port);
          server.on('data', (s, chunk) => {
            s.send(chunk);
          });
          const c = await connect(ok.port);
          const r = reader(c);
          c.write('after EADDRINUSE');
          assert.equal((await r.readExactly(16)).toString(), 'after EADDRINUSE');
        } finally {
          await new Promise<void>((resolve) => blocker.close(() => resolve()));
        }
      });

      it('rejects with a system error code and syscall getaddrinfo for a host that does not resolve', async () => {
        const server = track(createServer({ driver }));
        let err: unknown;
        try {
          await withTimeout(server.listen(0, 'no-such-host.invalid'), 15_000, 'listen on an unresolvable host');
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof AcceptPoolSystemError, `not a system error: ${String(err)}`);
        assert.match(codeOf(err) ?? '', /^E[A-Z_]+$/);
        assert.ok(!(codeOf(err) ?? '').startsWith('ERR_'), 'a system failure must carry the OS code');
        assert.equal(err.syscall, 'getaddrinfo');
        assert.equal(server.listening, false);
      });
    });

    describe('send / closeSession / broadcast', () => {
      let h: Harness;
      let liveId: number;
      beforeEach(async () => {
        h = await startEcho(driver);
        const c = await connect(h.port);
        reader(c);
        await h.waitSessions(1);
        liveId = h.sessions[0].id;
      });

      it('send() throws ERR_ACCEPTPOOL_INVALID_ARG for data that is not bytes or a string', async () => {
        for (const data of [123, {}, null, undefined, [1, 2], true, Symbol('x')]) {
          assertThrowsCode(() => callUntyped(h.server, 'send', liveId, data), INVALID, `send(id, ${inspect(data)})`);
        }
        assertThrowsCode(() => (h.sessions[0].send as (d: unknown) => boolean)(123), INVALID, 'session.send(123)');
        await assertStillWorks(h, 'bad send data');
      });

      it('send() throws ERR_ACCEPTPOOL_INVALID_ARG for an id that is not a non-negative safe integer', async () => {
        const buf = Buffer.from('x');
        for (const id of ['x', String(liveId), -1, 1.5, NaN, Infinity, 2 ** 53, null, undefined, {}, 1n]) {
          assertThrowsCode(() => callUntyped(h.server, 'send', id, buf), INVALID, `send(${inspect(id)}, buf)`);
        }
        await assertStillWorks(h, 'bad send ids');
      });

      it('closeSession() throws ERR_ACCEPTPOOL_INVALID_ARG for a bad id and closes nothing', async () => {
        for (const id of ['x', String(liveId), -1, 1.5, NaN, Infinity, 2 ** 53, null, undefined, {}]) {
          assertThrowsCode(() => callUntyped(h.server, 'closeSession', id), INVALID, `closeSession(${inspect(id)})`);
        }
        assert.equal(h.closes.length, 0, 'a bad closeSession() closed a session');
        await assertStillWorks(h, 'bad closeSession ids');
      });

      it('broadcast() throws ERR_ACCEPTPOOL_INVALID_ARG for bad data or a bad id list, sending nothing', async () => {
        const buf = Buffer.from('x');
        for (const data of [123, {}, null, undefined, true]) {
          assertThrowsCode(() => callUntyped(h.server, 'broadcast', data), INVALID, `broadcast(${inspect(data)})`);
        }
        for (const ids of ['x', 5, {}, [1.5], ['a'], [-1], [NaN], [liveId, 'y'], new Float64Array([NaN]), new Float64Array([-2])]) {
          assertThrowsCode(() => callUntyped(h.server, 'broadcast', buf, ids), INVALID, `broadcast(buf, ${inspect(ids)})`);
        }
        await assertStillWorks(h, 'bad broadcast');
      });

      it('stale and never-issued ids return false (send, closeSession) or reach nobody (broadcast), and are counted', async () => {
        const before = h.server.stats().staleCommands;
        const never = liveId + 2 ** 24 * 1000;
        assert.equal(h.server.send(never, 'x'), false);
        assert.equal(h.server.closeSession(never), false);
        assert.equal(h.server.send(12345, 'x'), false);
        assert.equal(h.server.broadcast('x', [never]), 0);
        assert.equal(h.server.stats().staleCommands - before, 4);
        await assertStillWorks(h, 'stale ids');
      });

      it('broadcast() validates its id list even after the server has closed', async () => {
        await h.server.close();
        assertThrowsCode(() => callUntyped(h.server, 'broadcast', Buffer.from('x'), 'x'), INVALID, "broadcast(buf, 'x') after close");
        assertThrowsCode(() => callUntyped(h.server, 'broadcast', Buffer.from('x'), [-1]), INVALID, 'broadcast(buf, [-1]) after close');
      });
    });
  });
}
