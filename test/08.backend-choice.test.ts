/**
 * options.backend: which OS backend an endpoint runs, checked up front, with
 * ACCEPTPOOL_BACKEND as the default and stats() saying what runs.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { inspect } from 'node:util';

import { backends, createClient, createServer, defaultBackend } from '../src/index';
import type { ServerOptions } from '../src/index';
import { cleanupAll, connectOk, startClient, trackClient } from './client-helpers';
import { DRIVERS, HOST4, PLATFORM_BACKEND, assertThrowsCode, connect, reader, track } from './helpers';

const INVALID = 'ERR_ACCEPTPOOL_INVALID_ARG';
const UNSUPPORTED = 'ERR_ACCEPTPOOL_UNSUPPORTED';
const ALL = ['epoll', 'io_uring', 'iocp', 'libuv'];

/** Runs `fn` with ACCEPTPOOL_BACKEND set to `value` (undefined: unset), then restores it. */
function withEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.ACCEPTPOOL_BACKEND;
  if (value === undefined) delete process.env.ACCEPTPOOL_BACKEND;
  else process.env.ACCEPTPOOL_BACKEND = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.ACCEPTPOOL_BACKEND;
    else process.env.ACCEPTPOOL_BACKEND = saved;
  }
}

describe('options.backend', function () {
  this.timeout(20_000);
  afterEach(cleanupAll);

  it("backends() lists what this build has, each a known name, with this run's backend among them", () => {
    const have = backends();
    assert.ok(have.length >= 1);
    for (const name of have) assert.ok(ALL.includes(name), name);
    assert.equal(new Set(have).size, have.length);
    assert.ok(have.includes(PLATFORM_BACKEND as (typeof have)[number]), `${PLATFORM_BACKEND} not in ${have.join(', ')}`);
    // A copy: the caller cannot change what the next call says.
    have.pop();
    assert.equal(backends().length, have.length + 1);
  });

  it('refuses a value that names no backend, by name, for servers and clients', () => {
    for (const bad of ['', 'kqueue', 'EPOLL', 1, true, null, {}]) {
      const options = { backend: bad } as unknown as ServerOptions;
      assertThrowsCode(() => createServer(options), INVALID, `server backend ${inspect(bad)}`);
      assertThrowsCode(() => trackClient(createClient(options)), INVALID, `client backend ${inspect(bad)}`);
    }
  });

  it('refuses a backend this build lacks with ERR_ACCEPTPOOL_UNSUPPORTED, naming the OS and what it has', () => {
    const missing = ALL.filter((name) => !backends().includes(name as never));
    for (const name of missing) {
      const err = assertThrowsCode(() => createServer({ backend: name as never }), UNSUPPORTED, name);
      assert.match(err.message, new RegExp(`'${name}' is not available on ${process.platform}`));
      for (const have of backends()) assert.ok(err.message.includes(have), err.message);
    }
  });

  it('runs the backend it is given: stats() names it, and it serves', async () => {
    for (const name of backends()) {
      const server = track(createServer({ backend: name, poolSize: 8 }));
      assert.equal(server.stats().backend, name);
      server.on('data', (s, chunk) => s.send(chunk));
      const { port } = await server.listen(0, HOST4);
      const sock = await connect(port, HOST4);
      const read = reader(sock);
      sock.write('ping');
      assert.equal((await read.readExactly(4)).toString(), 'ping');
      assert.equal(server.stats().accepts, 1);
      assert.equal(server.stats().backendFallback, undefined);
      sock.destroy();
      await server.close();
    }
  });

  it('takes ACCEPTPOOL_BACKEND as the default, an explicit option over it, and names the variable when it is bad', () => {
    const first = backends()[0];
    withEnv(first, () => assert.equal(track(createServer()).stats().backend, first));
    withEnv('', () => assert.equal(track(createServer({ backend: first })).stats().backend, first));
    withEnv('kqueue', () => {
      const err = assertThrowsCode(() => createServer(), INVALID, 'bad ACCEPTPOOL_BACKEND');
      assert.match(err.message, /ACCEPTPOOL_BACKEND/);
      // The option wins over the variable, bad or not.
      assert.equal(track(createServer({ backend: first })).stats().backend, first);
      assert.equal(trackClient(createClient({ backend: first })).stats().backend, first);
    });
  });

  it('without options.backend or ACCEPTPOOL_BACKEND an endpoint runs defaultBackend(), the platform default from the native table', () => {
    const def = defaultBackend();
    if (process.platform === 'linux') assert.equal(def, 'epoll', 'Linux stays on epoll until the benchmark shows io_uring ahead');
    if (process.platform === 'win32') assert.equal(def, 'iocp');
    withEnv(undefined, () => {
      const server = track(createServer());
      if (def !== 'auto') assert.equal(server.stats().backend, def);
      assert.ok(backends().includes(server.stats().backend));
      assert.equal(trackClient(createClient()).stats().backend, server.stats().backend);
    });
  });

  it("on Linux 'auto' tries io_uring before epoll", function () {
    if (process.platform !== 'linux') this.skip(); // the order is Linux's table
    assert.deepEqual(backends().slice(0, 2), ['io_uring', 'epoll']);
  });

  it("'auto' runs the first backend this machine can run", () => {
    withEnv(undefined, () => {
      const st = track(createServer({ backend: 'auto' })).stats();
      assert.ok(backends().includes(st.backend));
      if (st.backendFallback === undefined) assert.equal(st.backend, backends()[0]);
      else assert.match(st.backendFallback, /^[a-z_]+: /);
    });
  });
});

// The portable backend: the automatic one where there is neither epoll nor
// IOCP, and selectable by name on Linux so that this suite runs on it here.
describe("options.backend 'libuv'", function () {
  this.timeout(20_000);
  afterEach(cleanupAll);

  (process.platform === 'linux' ? it : it.skip)("on Linux it is compiled in after epoll, and 'auto' never takes it", () => {
    const have = backends();
    assert.ok(have.includes('libuv'), have.join(', '));
    assert.ok(have.indexOf('libuv') > have.indexOf('epoll'), have.join(', '));
    withEnv(undefined, () => assert.notEqual(track(createServer({ backend: 'auto' })).stats().backend, 'libuv'));
  });

  (process.platform !== 'linux' && process.platform !== 'win32' ? it : it.skip)("on macOS and the BSDs it is what 'auto' runs", () => {
    withEnv(undefined, () => assert.equal(track(createServer({ backend: 'auto' })).stats().backend, 'libuv'));
  });

  for (const driver of DRIVERS) {
    (backends().includes('libuv') ? it : it.skip)(
      `named (${driver} driver), it serves a server and a client, and stats() says 'libuv' for both`,
      async () => {
        const server = track(createServer({ backend: 'libuv', driver, poolSize: 8 }));
        assert.equal(server.stats().backend, 'libuv');
        server.on('data', (s, chunk) => s.send(chunk));
        const { port } = await server.listen(0, HOST4);
        const h = startClient(driver, { backend: 'libuv' });
        assert.equal(h.client.stats().backend, 'libuv');
        const session = await connectOk(h, port);
        session.send('over libuv both ways');
        assert.equal((await h.readExactly(session.id, 20)).toString(), 'over libuv both ways');
        assert.equal(server.stats().accepts, 1);
        assert.equal(server.stats().backend, 'libuv');
        await server.close();
      },
    );

    (backends().includes('libuv') ? it : it.skip)(
      `named (${driver} driver), slots reused while writes wait reach no later occupant: backendCounters.staleCallbacks stays 0`,
      async () => {
        const server = track(createServer({ backend: 'libuv', driver, poolSize: 2, maxQueuedBytes: 32 << 20 }));
        // More than loopback's socket buffers hold (the client reads only
        // after a pause): each session queues a uv_write, then is reset: the
        // write is cancelled and the close callback comes later.
        const big = Buffer.alloc(16 << 20, 7);
        server.on('session', (s) => {
          s.send(big);
          s.destroy();
        });
        const { port } = await server.listen(0, HOST4);
        for (let i = 0; i < 10; i++) {
          // Read until the reset (or the end, if every byte sent before it was read).
          await new Promise<void>((resolve) => {
            const sock = net.connect(port, HOST4);
            sock.on('error', () => {}).on('close', () => resolve());
            setTimeout(() => sock.resume(), 20);
          });
        }
        const counters = server.stats().backendCounters ?? {};
        assert.ok((counters.queuedWrites ?? 0) > 0, `queuedWrites ${counters.queuedWrites}`);
        assert.equal(counters.staleCallbacks, 0);
        assert.equal(server.stats().accepts, 10);
        await server.close();
      },
    );
  }
});
