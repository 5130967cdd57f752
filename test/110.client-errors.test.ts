/**
 * How client connects fail: refused, timed out, an unusable source address,
 * a full pool, and bad arguments. Each failure has a stable code, Node-style
 * system error fields, is counted, and leaves no slot in use.
 */
import * as assert from 'node:assert/strict';
import * as os from 'node:os';

import { AcceptPoolSystemError, createClient } from '../src/index';
import type { Client, ClientOptions, ConnectOptions } from '../src/index';
import { DRIVERS, HOST4, HOST6, PLATFORM_BACKEND, assertThrowsCode, osErrno, startEcho, waitFor } from './helpers';
import {
  assertFailsCode,
  cleanupAll,
  connectOk,
  havePython,
  refusedPort,
  startBlackhole,
  startClient,
  stubLookup,
  trackClient,
} from './client-helpers';
import type { ClientHarness } from './client-helpers';

const INVALID = 'ERR_ACCEPTPOOL_INVALID_ARG';
const ERRNO = os.constants.errno;
const NAME = 'slow-then-fast.acceptpool.invalid';

/** Calls client.connect with arguments its types would not allow. */
function connectUntyped(client: Client, ...args: unknown[]): unknown {
  return (client as unknown as { connect(...a: unknown[]): unknown }).connect(...args);
}

/** Calls client.send / closeSession with arguments its types would not allow. */
function callUntyped(client: Client, method: 'send' | 'closeSession', ...args: unknown[]): unknown {
  return (client as unknown as Record<typeof method, (...a: unknown[]) => unknown>)[method](...args);
}

/** Connect rejects, and the rejection is an AcceptPoolSystemError; returns it. */
async function connectFails(h: ClientHarness, port: number, host: string, options?: ConnectOptions): Promise<AcceptPoolSystemError> {
  let err: unknown;
  let resolved = false;
  try {
    await h.client.connect(port, host, options);
    resolved = true;
  } catch (e) {
    err = e;
  }
  assert.equal(resolved, false, `connect to ${host}:${port} resolved`);
  assert.ok(err instanceof AcceptPoolSystemError, `rejected with ${String(err)}, not an AcceptPoolSystemError`);
  return err;
}

/** Nothing was started, counted or left in use by refused calls. */
function assertNothingStarted(h: ClientHarness): void {
  const st = h.client.stats();
  assert.equal(st.connects, 0, 'a connect was started for bad arguments');
  assert.equal(st.connectErrors, 0, 'bad arguments were counted as a connect error');
  assert.equal(st.inUse, 0, 'bad arguments left a slot in use');
}

for (const driver of DRIVERS) {
  describe(`client connect errors (${driver} client)`, function () {
    this.timeout(20_000);
    afterEach(cleanupAll);

    describe('refused', () => {
      it("rejects with ECONNREFUSED, errno -ECONNREFUSED, syscall 'connect', and the address and port tried", async () => {
        const port = await refusedPort();
        const h = startClient(driver);
        const err = await connectFails(h, port, HOST4);
        assert.equal(err.code, 'ECONNREFUSED');
        assert.equal(err.errno, -osErrno('ECONNREFUSED'));
        assert.equal(err.syscall, 'connect');
        assert.equal(err.address, HOST4);
        assert.equal(err.port, port);
      });

      it('rejects a refused ::1 port with the IPv6 address tried', async () => {
        const port = await refusedPort(HOST6);
        const h = startClient(driver);
        const err = await connectFails(h, port, HOST6);
        assert.equal(err.code, 'ECONNREFUSED');
        assert.equal(err.address, HOST6);
        assert.equal(err.port, port);
      });

      it('counts every refused connect in stats().connectErrors, leaves no slot in use, and the client connects afterwards', async () => {
        const port = await refusedPort();
        const h = startClient(driver);
        for (let i = 0; i < 3; i++) await connectFails(h, port, HOST4);
        assert.equal(h.client.stats().connectErrors, 3);
        await waitFor(() => h.client.stats().inUse === 0, 5_000, 'inUse back to 0');
        assert.equal(h.open.size, 0);
        assert.equal(h.sessions.length, 0, "a refused connect emitted 'session'");
        const srv = await startEcho(driver);
        const s = await connectOk(h, srv.port);
        h.client.send(s.id, 'after refusals');
        assert.equal((await h.readExactly(s.id, 14)).toString(), 'after refusals');
        assert.equal(h.client.stats().connectErrors, 3);
      });
    });

    describe('timeout', function () {
      before(function () {
        if (!havePython()) this.skip();
      });

      it("rejects with ETIMEDOUT (negative errno, syscall 'connect', address, port) after about `timeout` ms against a listener that never answers", async () => {
        const bh = await startBlackhole();
        const h = startClient(driver);
        const t0 = Date.now();
        const err = await connectFails(h, bh.port, bh.host, { timeout: 500 });
        const elapsed = Date.now() - t0;
        assert.equal(err.code, 'ETIMEDOUT');
        assert.equal(err.errno, -ERRNO.ETIMEDOUT);
        assert.equal(err.syscall, 'connect');
        assert.equal(err.address, bh.host);
        assert.equal(err.port, bh.port);
        assert.ok(elapsed >= 450, `rejected after ${elapsed} ms, before the 500 ms timeout`);
        assert.ok(elapsed <= 2_000, `rejected only after ${elapsed} ms`);
      });

      it('releases the slot of a timed-out connect (inUse back to 0), emits no session, and the client still connects', async () => {
        const bh = await startBlackhole();
        const h = startClient(driver);
        await connectFails(h, bh.port, bh.host, { timeout: 300 });
        await waitFor(() => h.client.stats().inUse === 0, 5_000, 'the timed-out slot to be released');
        assert.equal(h.sessions.length, 0, "a timed-out connect emitted 'session'");
        const srv = await startEcho(driver);
        const s = await connectOk(h, srv.port);
        h.client.send(s.id, 'after a timeout');
        assert.equal((await h.readExactly(s.id, 15)).toString(), 'after a timeout');
      });

      it("moves on to a name's next address when the first times out, and connects there", async () => {
        const bh = await startBlackhole();
        // The same port on another loopback address, where a server does answer.
        const srv = await startEcho(driver, {}, { host: '127.0.0.2', port: bh.port });
        assert.equal(srv.port, bh.port);
        const stub = stubLookup(NAME, [
          { address: bh.host, family: 4 },
          { address: '127.0.0.2', family: 4 },
        ]);
        try {
          const h = startClient(driver);
          const t0 = Date.now();
          const s = await connectOk(h, bh.port, NAME, { timeout: 300 });
          assert.ok(Date.now() - t0 >= 250, 'the first address was not waited for');
          assert.equal(s.remoteAddress, '127.0.0.2');
          h.client.send(s.id, 'second');
          assert.equal((await h.readExactly(s.id, 6)).toString(), 'second');
          await srv.waitSessions(1);
        } finally {
          stub.restore();
        }
      });

      it('counts a timed-out connect in stats().connectErrors, as every failed connect', async () => {
        const bh = await startBlackhole();
        const h = startClient(driver);
        await connectFails(h, bh.port, bh.host, { timeout: 300 });
        await waitFor(() => h.client.stats().inUse === 0, 5_000, 'the timed-out slot to be released');
        const st = h.client.stats();
        assert.equal(st.connects, 1);
        assert.equal(
          st.connectErrors,
          1,
          `a connect that failed (ETIMEDOUT) is not in connectErrors: ${JSON.stringify({ connects: st.connects, connectErrors: st.connectErrors, timeouts: st.timeouts })}`,
        );
      });
    });

    describe('localAddress that is not local', () => {
      it('rejects with EADDRNOTAVAIL and a negative errno, leaving no slot in use', async () => {
        const srv = await startEcho(driver);
        const h = startClient(driver);
        // 192.0.2.1 (TEST-NET-1) is never contacted: binding to it fails.
        const err = await connectFails(h, srv.port, HOST4, { localAddress: '192.0.2.1' });
        assert.equal(err.code, 'EADDRNOTAVAIL');
        assert.equal(err.errno, -osErrno('EADDRNOTAVAIL'));
        await waitFor(() => h.client.stats().inUse === 0, 5_000, 'no slot in use');
        assert.equal(h.client.stats().connectErrors, 1);
        assert.equal(srv.sessions.length, 0);
      });

      it("reports it as node:net does: syscall 'bind' and the local address (no port when none was asked for)", async () => {
        const srv = await startEcho(driver);
        const h = startClient(driver);
        const err = await connectFails(h, srv.port, HOST4, { localAddress: '192.0.2.1' });
        assert.equal(err.code, 'EADDRNOTAVAIL');
        assert.equal(err.syscall, 'bind');
        assert.equal(err.address, '192.0.2.1');
        assert.equal(err.port, undefined);
        assert.equal(err.message, 'bind EADDRNOTAVAIL 192.0.2.1');
      });
    });

    describe('localPort already in use', () => {
      it("rejects with EADDRINUSE, syscall 'bind' and the local address and port, leaving no slot in use", async () => {
        const srv = await startEcho(driver);
        const taken = await startEcho(driver); // holds 127.0.0.1:<taken.port>
        const h = startClient(driver);
        const err = await connectFails(h, srv.port, HOST4, { localAddress: HOST4, localPort: taken.port });
        assert.equal(err.code, 'EADDRINUSE');
        assert.equal(err.errno, -osErrno('EADDRINUSE'));
        assert.equal(err.syscall, 'bind');
        assert.equal(err.address, HOST4);
        assert.equal(err.port, taken.port);
        assert.equal(err.message, `bind EADDRINUSE ${HOST4}:${taken.port}`);
        await waitFor(() => h.client.stats().inUse === 0, 5_000, 'no slot in use');
        assert.equal(h.client.stats().connectErrors, 1);
        assert.equal(srv.sessions.length, 0);
      });
    });

    describe('maxConnections', () => {
      it('rejects ERR_ACCEPTPOOL_POOL_FULL once maxConnections sessions are open, and connects again once one closes', async () => {
        const srv = await startEcho(driver);
        const h = startClient(driver, { maxConnections: 2, poolSize: 2, poolGrowth: 1 });
        const a = await connectOk(h, srv.port);
        await connectOk(h, srv.port);
        const full = await assertFailsCode(
          () => h.client.connect(srv.port, HOST4),
          'ERR_ACCEPTPOOL_POOL_FULL',
          'third connect with maxConnections 2',
        );
        // One message, whichever driver refused it (and whenever).
        assert.equal(full.message, `maxConnections reached connecting to ${HOST4}:${srv.port}`);
        assert.equal(h.client.stats().inUse, 2);
        assert.equal(h.client.closeSession(a.id), true);
        await h.waitClose(a.id);
        await waitFor(() => h.client.stats().inUse === 1, 5_000, 'the closed slot to be free');
        const c = await connectOk(h, srv.port);
        h.client.send(c.id, 'room again');
        assert.equal((await h.readExactly(c.id, 10)).toString(), 'room again');
      });
    });

    describe('bad arguments (ERR_ACCEPTPOOL_INVALID_ARG, nothing started)', () => {
      it('refuses a port that is not an integer from 1 to 65535', async () => {
        const h = startClient(driver);
        for (const port of [0, 70000, 65536, -1, 1.5, Number.NaN, Infinity, '80', null, undefined]) {
          await assertFailsCode(() => connectUntyped(h.client, port, HOST4), INVALID, `connect(${String(port)})`);
        }
        assertNothingStarted(h);
      });

      it('refuses a host that is not a non-empty string', async () => {
        const h = startClient(driver);
        for (const host of ['', 127, {}, null]) {
          await assertFailsCode(() => connectUntyped(h.client, 80, host), INVALID, `connect(80, ${JSON.stringify(host)})`);
        }
        assertNothingStarted(h);
      });

      it('refuses options that are not an object, and an unknown option', async () => {
        const h = startClient(driver);
        await assertFailsCode(() => connectUntyped(h.client, 80, HOST4, null), INVALID, 'options null');
        await assertFailsCode(() => connectUntyped(h.client, 80, HOST4, 'fast'), INVALID, "options 'fast'");
        await assertFailsCode(() => connectUntyped(h.client, 80, HOST4, { family: 4 }), INVALID, 'unknown option family');
        await assertFailsCode(() => connectUntyped(h.client, 80, HOST4, { timeOut: 5 }), INVALID, 'misspelt option timeOut');
        assertNothingStarted(h);
      });

      it('refuses a localAddress that is not a numeric IP address', async () => {
        const h = startClient(driver);
        for (const localAddress of ['localhost', '', '127.0.0.256', 127, {}]) {
          await assertFailsCode(
            () => connectUntyped(h.client, 80, HOST4, { localAddress }),
            INVALID,
            `localAddress ${JSON.stringify(localAddress)}`,
          );
        }
        assertNothingStarted(h);
      });

      it('refuses a localPort without localAddress, or out of range', async () => {
        const h = startClient(driver);
        await assertFailsCode(() => connectUntyped(h.client, 80, HOST4, { localPort: 40000 }), INVALID, 'localPort without localAddress');
        for (const localPort of [-1, 65536, 1.5, '40000']) {
          await assertFailsCode(
            () => connectUntyped(h.client, 80, HOST4, { localAddress: HOST4, localPort }),
            INVALID,
            `localPort ${JSON.stringify(localPort)}`,
          );
        }
        assertNothingStarted(h);
      });

      it('refuses a timeout that is negative, fractional or not a number', async () => {
        const h = startClient(driver);
        for (const timeout of [-1, 1.5, Number.NaN, Infinity, '500', true]) {
          await assertFailsCode(() => connectUntyped(h.client, 80, HOST4, { timeout }), INVALID, `timeout ${String(timeout)}`);
        }
        assertNothingStarted(h);
      });

      it('refuses a localAddress of another family than every address of the target', async () => {
        const h = startClient(driver);
        await assertFailsCode(() => h.client.connect(80, HOST4, { localAddress: HOST6 }), INVALID, 'IPv6 source to an IPv4 target');
        await assertFailsCode(() => h.client.connect(80, HOST6, { localAddress: HOST4 }), INVALID, 'IPv4 source to an IPv6 target');
        assertNothingStarted(h);
      });

      it('send() and closeSession() throw for an id that is not a non-negative safe integer, and send() for data that is not bytes', async () => {
        const srv = await startEcho(driver);
        const h = startClient(driver);
        const s = await connectOk(h, srv.port);
        for (const id of [-1, 1.5, Number.NaN, '1', null, 2 ** 53]) {
          assertThrowsCode(() => callUntyped(h.client, 'send', id, 'x'), INVALID, `send(${String(id)})`);
          assertThrowsCode(() => callUntyped(h.client, 'closeSession', id), INVALID, `closeSession(${String(id)})`);
        }
        for (const data of [123, null, undefined, {}, [1, 2]]) {
          assertThrowsCode(() => callUntyped(h.client, 'send', s.id, data), INVALID, `send(id, ${JSON.stringify(data)})`);
        }
        // The session was not touched.
        h.client.send(s.id, 'untouched');
        assert.equal((await h.readExactly(s.id, 9)).toString(), 'untouched');
        assert.equal(h.open.size, 1);
      });
    });
  });
}

describe('createClient() options', () => {
  afterEach(cleanupAll);

  /** Options as a caller without types might pass them. */
  function untyped(o: unknown): ClientOptions {
    return o as ClientOptions;
  }

  it('throws ERR_ACCEPTPOOL_INVALID_ARG for server-only and unknown options', () => {
    for (const key of ['backlog', 'ipv6Only', 'acceptBatch', 'port', 'host']) {
      assertThrowsCode(() => trackClient(createClient(untyped({ [key]: 1 }))), INVALID, `createClient({ ${key} })`);
    }
  });

  it('throws ERR_ACCEPTPOOL_INVALID_ARG for a bad driver, bad numbers, and options that are not an object', () => {
    assertThrowsCode(() => trackClient(createClient(untyped({ driver: 'fast' }))), INVALID, "driver 'fast'");
    assertThrowsCode(() => trackClient(createClient(untyped({ maxConnections: 0 }))), INVALID, 'maxConnections 0');
    assertThrowsCode(() => trackClient(createClient(untyped({ highWaterMark: -1 }))), INVALID, 'highWaterMark -1');
    assertThrowsCode(() => trackClient(createClient(untyped({ idleTimeout: 'soon' }))), INVALID, "idleTimeout 'soon'");
    assertThrowsCode(() => trackClient(createClient(untyped(null))), INVALID, 'options null');
    assertThrowsCode(() => trackClient(createClient(untyped(5))), INVALID, 'options 5');
  });

  it('reports the chosen driver in stats()', () => {
    for (const driver of DRIVERS) {
      const c = trackClient(createClient({ driver }));
      assert.equal(c.stats().driver, driver);
      assert.equal(c.stats().backend, PLATFORM_BACKEND);
    }
  });
});
