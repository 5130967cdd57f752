import * as assert from 'node:assert/strict';
import { inspect } from 'node:util';

import { createServer } from '../src/index';
import type { ServerStats } from '../src/index';
import { DRIVERS, PLATFORM_BACKEND, cleanup, connectMany, randomBytes, reader, startEcho, track, waitFor } from './helpers';

const COUNTERS: readonly (keyof ServerStats)[] = [
  'poolSize',
  'poolFree',
  'inUse',
  'peakInUse',
  'growths',
  'shrinks',
  'accepts',
  'acceptErrors',
  'acceptAborts',
  'emfile',
  'shed',
  'acceptPauses',
  'staleCommands',
  'overflows',
  'timeouts',
  'bytesIn',
  'bytesOut',
  'sendBlocks',
  'lingers',
  'lingerEnds',
  'lingerTimeouts',
  'bytesDiscarded',
  'retiredSlots',
];

function assertCounters(st: ServerStats): void {
  for (const key of COUNTERS) {
    const v = st[key];
    assert.equal(typeof v, 'number', `stats().${key} is ${typeof v}`);
    assert.ok(Number.isSafeInteger(v) && (v as number) >= 0, `stats().${key} = ${inspect(v)}`);
  }
  assert.equal(st.poolFree + st.inUse, st.poolSize, 'poolFree + inUse must equal poolSize');
  assert.ok(st.peakInUse >= st.inUse);
}

for (const driver of DRIVERS) {
  describe(`stats() (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    it('has every counter as a non-negative integer, the platform backend and the chosen driver, before and after listen', async () => {
      const server = track(createServer({ driver, poolSize: 32, poolGrowth: 32 }));
      const idle = server.stats();
      assertCounters(idle);
      assert.equal(idle.backend, PLATFORM_BACKEND);
      assert.equal(idle.driver, driver);
      await server.listen(0, '127.0.0.1');
      const st = server.stats();
      assertCounters(st);
      assert.equal(st.backend, PLATFORM_BACKEND);
      assert.equal(st.driver, driver);
      assert.equal(st.poolSize, 32);
      assert.equal(st.inUse, 0);
      assert.equal(st.accepts, 0);
    });

    it('counts accepts, peakInUse, inUse and bytesIn/bytesOut exactly for known traffic', async () => {
      const h = await startEcho(driver);
      const N = 40;
      const clients = await connectMany(h.port, N);
      const readers = clients.map((c) => reader(c));
      const payloads = clients.map((_, i) => randomBytes(100 + i * 37));
      clients.forEach((c, i) => c.write(payloads[i]));
      await Promise.all(readers.map((r, i) => r.readExactly(payloads[i].length)));
      const total = payloads.reduce((n, p) => n + p.length, 0);
      await waitFor(() => h.server.stats().bytesOut === total, 5_000, 'bytesOut');
      let st = h.server.stats();
      assertCounters(st);
      assert.equal(st.accepts, N);
      assert.equal(st.inUse, N);
      assert.equal(st.peakInUse, N);
      assert.equal(st.bytesIn, total);
      assert.equal(st.bytesOut, total);
      assert.equal(st.acceptErrors, 0);
      assert.equal(st.acceptAborts, 0);
      assert.equal(st.staleCommands, 0);
      for (const c of clients) c.end();
      await h.waitCloses(N);
      await waitFor(() => h.server.stats().inUse === 0, 5_000, 'inUse 0');
      st = h.server.stats();
      assertCounters(st);
      assert.equal(st.peakInUse, N, 'peakInUse must keep the peak');
      assert.equal(st.accepts, N);
      assert.equal(st.bytesIn, total);
    });
  });
}
