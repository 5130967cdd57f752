import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { LoadGenerator, runLoad } from '../src/index';
import type { LoadOptions, LoadResult, Server } from '../src/index';
import { assertRejectsCode, cleanup, delay, startEcho, waitFor, withTimeout } from './helpers';

// A deep backlog, so no dropped SYN (and its one-second retransmit) slows a run.
const SERVER = { backlog: 4096 };
// A run's length is a window, not a promise of throughput: the tests check
// that the operations it did complete are exact, never how many fit (a
// loaded machine may fit few; speed is acceptpool bench's).
const SHORT: Partial<LoadOptions> = { duration: 400, warmup: 100 };

/**
 * The server counted every connection the generator saw connected, and at
 * most the abandoned ones besides (their handshake can complete in the
 * kernel just before the generator gives them up): as a session, or in
 * acceptAborts when the client's reset reached it first and the OS would not
 * hand it out (Wine fails the AcceptEx of a connection reset in the backlog;
 * Linux accepts it).
 */
async function serverSaw(server: Server, r: LoadResult): Promise<void> {
  const counted = (): number => server.stats().accepts + server.stats().acceptAborts;
  await waitFor(() => counted() >= r.connected, 5_000, `accepts + acceptAborts >= connected ${r.connected}`);
  await delay(100);
  const st = server.stats();
  assert.ok(
    counted() <= r.connected + r.abandoned,
    `accepts ${st.accepts} + acceptAborts ${st.acceptAborts} <= connected ${r.connected} + abandoned ${r.abandoned}`,
  );
  assert.equal(st.acceptErrors, st.acceptAborts, 'no accept failed for any other reason');
}

describe('native load generator (runLoad, LoadGenerator)', function () {
  this.timeout(30_000);
  afterEach(cleanup);

  it('proxyHeader: every connection starts with a PROXY v2 header naming a client of its own, and its reply still checks out', async () => {
    const h = await startEcho('threaded', { ...SERVER, proxyProtocol: { trusted: ['127.0.0.0/8'] } });
    const r = await runLoad({ ...SHORT, port: h.port, mode: 'reqrep', connections: 8, proxyHeader: true });
    assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
    assert.ok(r.completed > 0, `completed ${r.completed}`);
    await waitFor(() => h.server.stats().inUse === 0, 5_000, 'every connection gone');
    const st = h.server.stats();
    // Lanes reset at the end of the run may go before their header is read.
    assert.equal(st.proxyHeaders + st.proxyAborted, st.accepts);
    assert.ok(st.proxyHeaders >= r.completed, `${st.proxyHeaders} headers for ${r.completed} replies`);
    assert.equal(st.proxyMalformed + st.proxyUntrusted + st.proxyTimeouts, 0);
    assert.ok(h.sessions.length > 0 && h.sessions.every((s) => s.remoteAddress.startsWith('198.1')), h.sessions[0]?.remoteAddress);
  });

  it('connect-close: the server counted exactly the connections the generator saw connected', async () => {
    const h = await startEcho('threaded', SERVER);
    const r = await runLoad({ ...SHORT, port: h.port, mode: 'connect-close', connections: 16 });
    assert.equal(r.mode, 'connect-close');
    assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
    assert.ok(r.completed > 0, `completed ${r.completed}`);
    assert.ok(r.rate > 0);
    assert.equal(r.latencyUs.count, r.completed);
    assert.ok(r.total >= r.completed);
    assert.equal(r.connected, r.total, 'every connect that succeeded was one operation');
    assert.equal(r.connects, r.connected + r.abandoned, 'every connect ended as connected or abandoned at the end');
    assert.ok(r.abandoned <= 16);
    await serverSaw(h.server, r);
    await waitFor(() => h.server.stats().inUse === 0, 5_000, 'every reset connection closed on the server');
  });

  it('reqrep: every operation is a verified echo of its own request, and the server saw every connection', async () => {
    const h = await startEcho('threaded', SERVER);
    const r = await runLoad({ ...SHORT, port: h.port, mode: 'reqrep', connections: 16 });
    assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
    assert.ok(r.completed > 0, `completed ${r.completed}`);
    assert.ok(r.bytesIn >= r.total * 16 && r.bytesIn < (r.total + 16) * 16, `bytesIn ${r.bytesIn} for ${r.total} replies`);
    assert.equal(r.connects, r.connected + r.abandoned);
    await serverSaw(h.server, r);
    assert.ok(h.server.stats().bytesOut >= r.total * 16, 'the server sent every reply the generator counted');
  });

  it('echo: holds its connections (one accept each) and verifies every round trip', async () => {
    const h = await startEcho('threaded', SERVER);
    const r = await runLoad({ ...SHORT, port: h.port, mode: 'echo', connections: 40 });
    assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
    assert.equal(r.connected, 40, 'never reconnected');
    assert.equal(r.peakOpen, 40);
    assert.ok(r.completed > 0, `completed ${r.completed}`);
    assert.ok(r.latencyUs.p50 > 0 && r.latencyUs.p99 >= r.latencyUs.p50 && r.latencyUs.max >= r.latencyUs.p99);
    await waitFor(() => h.server.stats().accepts === 40, 5_000, 'exactly 40 accepts');
  });

  it('idle: exactly N sessions stay open on the server until stop(), then every one closes', async () => {
    const h = await startEcho('threaded', SERVER);
    const gen = new LoadGenerator();
    const run = gen.run({ port: h.port, mode: 'idle', connections: 300, duration: 60_000 });
    await waitFor(() => gen.progress().open === 300, 10_000, `300 open (have ${gen.progress().open})`);
    assert.equal(gen.progress().phase, 'hold');
    assert.equal(gen.running, true);
    await waitFor(() => h.server.stats().inUse === 300, 5_000, `server holds 300 (has ${h.server.stats().inUse})`);
    gen.stop();
    const r = await withTimeout(run, 5_000, 'run() after stop()');
    assert.equal(gen.running, false);
    assert.equal(r.peakOpen, 300);
    assert.equal(r.connects, 300);
    assert.equal(r.errorCount, 0);
    await waitFor(() => h.server.stats().inUse === 0, 5_000, 'the server saw every connection close');
    assert.equal(h.server.stats().accepts, 300);
  });

  /** A node:http server on loopback, counting its connections; closed after the test. */
  async function httpServer(handler: http.RequestListener): Promise<{ port: number; connections: () => number }> {
    const server = http.createServer(handler);
    let connections = 0;
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
    closeAfter.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return { port: (server.address() as AddressInfo).port, connections: () => connections };
  }
  const closeAfter: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closeAfter.splice(0).map((f) => f()));
  });
  const hello: http.RequestListener = (_req, res) => {
    res.setHeader('Content-Length', 12);
    res.end('hello world\n');
  };

  it('http: keep-alive connections (one each), every response a checked 200', async () => {
    const h = await httpServer(hello);
    const r = await runLoad({ ...SHORT, port: h.port, mode: 'http', connections: 20 });
    assert.equal(r.mode, 'http');
    assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
    assert.equal(r.connected, 20, 'never reconnected');
    assert.equal(h.connections(), 20);
    assert.ok(r.completed > 0, `completed ${r.completed}`);
    assert.ok(r.bytesOut > r.total * 30, 'a GET per response');
  });

  it('http-close: one GET per connection, with Connection: close', async () => {
    let closeAsked = 0;
    const h = await httpServer((req, res) => {
      if (req.headers.connection === 'close') closeAsked++;
      hello(req, res);
    });
    const r = await runLoad({ ...SHORT, port: h.port, mode: 'http-close', connections: 8 });
    assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
    assert.ok(r.completed > 0, `completed ${r.completed}`);
    assert.ok(r.connected >= r.total && r.connected <= r.total + 8, `connected ${r.connected}, total ${r.total}`);
    await waitFor(() => h.connections() >= r.total, 5_000, 'the server saw every connection');
    assert.ok(closeAsked >= r.total, `${closeAsked} requests asked to close, ${r.total} responses`);
  });

  it('http: a response not framed by Content-Length (chunked) or not a 200 is a mismatch, never a completion', async () => {
    const chunked: http.RequestListener = (_req, res) => {
      res.write('hel');
      res.end('lo');
    };
    const notFound: http.RequestListener = (_req, res) => {
      res.statusCode = 404;
      res.end('nope');
    };
    for (const handler of [chunked, notFound]) {
      const h = await httpServer(handler);
      const r = await runLoad({ port: h.port, mode: 'http', connections: 2, duration: 200, warmup: 0 });
      assert.equal(r.completed, 0);
      assert.ok((r.errors.mismatch ?? 0) > 0, JSON.stringify(r.errors));
    }
  });

  it('progress() shows the phases and the count growing while a run goes on', async () => {
    const h = await startEcho('threaded', SERVER);
    const gen = new LoadGenerator();
    const run = gen.run({ port: h.port, mode: 'echo', connections: 10, duration: 600, warmup: 100 });
    await waitFor(() => gen.progress().phase === 'measure', 5_000, 'the measure phase');
    const first = gen.progress().total;
    await waitFor(() => gen.progress().total > first, 5_000, 'more round trips');
    await run;
    const after = gen.progress();
    assert.equal(after.phase, 'done');
    assert.equal(after.running, false);
  });

  it('counts a port nobody listens on as ECONNREFUSED and completes nothing', async () => {
    const h = await startEcho('threaded');
    const port = h.port;
    await cleanup();
    const r = await runLoad({ port, mode: 'connect-close', connections: 4, duration: 200, warmup: 0 });
    assert.equal(r.completed, 0);
    assert.equal(r.rate, 0);
    assert.ok((r.errors.ECONNREFUSED ?? 0) > 0, JSON.stringify(r.errors));
    assert.equal(r.errorCount, r.errors.ECONNREFUSED);
  });

  it('refuses a second run on the same generator while one is in progress', async () => {
    const h = await startEcho('threaded', SERVER);
    const gen = new LoadGenerator();
    const run = gen.run({ port: h.port, mode: 'idle', connections: 2, duration: 60_000 });
    await assertRejectsCode(gen.run({ port: h.port }), 'ERR_ACCEPTPOOL_INVALID_STATE', 'second run');
    gen.stop();
    await run;
  });

  const bad: Array<[string, LoadOptions, RegExp]> = [
    ['port 0', { port: 0 }, /options\.port must be an integer from 1 to 65535, got 0/],
    ['an IPv6 host', { port: 1, host: '::1' }, /options\.host must be a numeric IPv4 address, got "::1"/],
    [
      'an unknown mode',
      { port: 1, mode: 'storm' as LoadOptions['mode'] },
      /options\.mode must be one of connect-close, reqrep, echo, idle, http, http-close/,
    ],
    ['fractional connections', { port: 1, connections: 1.5 }, /options\.connections must be an integer/],
    ['no threads', { port: 1, threads: 0 }, /options\.threads must be an integer from 1 to 64/],
    ['an unknown option', { port: 1, conns: 5 } as LoadOptions, /unknown load generator option "conns"/],
    ['sources past the end of IPv4', { port: 1, firstSource: '255.255.255.250', sourceAddresses: 10 }, /runs past 255\.255\.255\.255/],
  ];
  for (const [what, options, message] of bad) {
    it(`rejects ${what} with ERR_ACCEPTPOOL_INVALID_ARG and a message naming the option`, async () => {
      const err = await assertRejectsCode(runLoad(options), 'ERR_ACCEPTPOOL_INVALID_ARG', what);
      assert.match(err.message, message);
    });
  }
});
