/**
 * Many connections through one client: 10,000 connects, each verified by
 * its own echo and closed, in waves of a few hundred at once, spread over
 * eight loopback source addresses.
 */
import * as assert from 'node:assert/strict';

import { createClient } from '../src/index';
import type { Session } from '../src/index';
import { DRIVERS, HOST4, SLOT_MASK, randomBytes, startEcho, waitFor, withTimeout } from './helpers';
import { cleanupAll, trackClient } from './client-helpers';

const TOTAL = 10_000;
const WAVE = 250;
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);

interface Expect {
  want: Buffer;
  got: Buffer[];
  length: number;
  done: () => void;
}

for (const driver of DRIVERS) {
  describe(`client at scale (${driver} driver on both sides)`, function () {
    this.timeout(60_000);
    afterEach(cleanupAll);

    it(`opens, echoes byte for byte and closes ${TOTAL} connections in waves of ${WAVE}, all succeeding and all counted`, async () => {
      const t0 = Date.now();
      const srv = await startEcho(driver);
      const client = trackClient(createClient({ driver }));
      const expects = new Map<number, Expect>();
      const ids = new Set<number>();
      let clientCloses = 0;
      const badCloses: string[] = [];
      client.on('data', (s, chunk) => {
        const e = expects.get(s.id);
        assert.ok(e !== undefined, `data for a session ${s.id} that expects none`);
        e.got.push(Buffer.from(chunk));
        e.length += chunk.length;
        if (e.length >= e.want.length) e.done();
      });
      client.on('sessionClose', (s, reason) => {
        clientCloses++;
        if (reason !== 'local') badCloses.push(`${s.id}: ${reason}`);
      });

      const one = async (k: number): Promise<void> => {
        const s: Session = await client.connect(srv.port, HOST4, { localAddress: SOURCES[k % SOURCES.length] });
        assert.ok(!ids.has(s.id), `id ${s.id} handed out twice`);
        ids.add(s.id);
        const want = Buffer.concat([Buffer.from(`connection ${k}:`), randomBytes(16)]);
        const e: Expect = { want, got: [], length: 0, done: () => undefined };
        const echoed = new Promise<void>((resolve) => {
          e.done = resolve;
        });
        expects.set(s.id, e);
        assert.equal(client.send(s.id, want), true);
        await echoed;
        const got = Buffer.concat(e.got);
        assert.ok(got.equals(want), `connection ${k} got ${JSON.stringify(got.toString('latin1'))}`);
        assert.equal(client.closeSession(s.id), true);
      };

      for (let i = 0; i < TOTAL; i += WAVE) {
        const wave: Promise<void>[] = [];
        for (let k = i; k < Math.min(TOTAL, i + WAVE); k++) wave.push(one(k));
        await withTimeout(Promise.all(wave), 20_000, `wave starting at connection ${i}`);
      }
      await waitFor(() => clientCloses === TOTAL, 20_000, `${TOTAL} client sessionClose events (have ${clientCloses})`);
      await srv.waitCloses(TOTAL, 20_000);

      assert.deepEqual(badCloses.slice(0, 5), [], 'client sessions closed for a reason other than their own close');
      const cs = client.stats();
      assert.equal(cs.connects, TOTAL);
      assert.equal(cs.connectErrors, 0);
      assert.equal(ids.size, TOTAL);
      await waitFor(() => client.stats().inUse === 0 && srv.server.stats().inUse === 0, 10_000, 'no slot in use on either side');
      const slots = new Set([...ids].map((id) => id & SLOT_MASK));
      assert.ok(slots.size <= client.stats().poolSize, `${slots.size} distinct slots but a pool of ${client.stats().poolSize}`);

      const ss = srv.server.stats();
      assert.equal(ss.accepts, TOTAL);
      assert.equal(srv.sessions.length, TOTAL);
      const bySource = new Map<string, number>();
      for (const s of srv.sessions) bySource.set(s.remoteAddress, (bySource.get(s.remoteAddress) ?? 0) + 1);
      assert.deepEqual(
        [...bySource.entries()].sort(),
        SOURCES.map((a) => [a, TOTAL / SOURCES.length]).sort(),
        'connections did not come from the requested source addresses',
      );
      assert.ok(
        srv.closes.every((c) => c.reason === 'remote'),
        'a server session closed other than by the client',
      );
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 60_000, `took ${elapsed} ms`);
    });
  });
}
