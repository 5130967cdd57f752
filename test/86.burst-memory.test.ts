import * as assert from 'node:assert/strict';
import type * as net from 'node:net';

import type { BurstReady, BurstRss, BurstSent } from './fixtures/burst-server';
import type { ChildServer } from './helpers';
import { DRIVERS, cleanup, connect, delay, spawnFixture, waitFor } from './helpers';
import { underAsan } from './sanitizers';

const MiB = 1024 * 1024;
const BURST_BYTES = 64 * MiB;
const BURSTS = 3;

/**
 * How far above its pre-burst level an idle server's memory may stay once
 * the burst is over. The reading is anonymous RSS after a full GC (see
 * residentBytes in the fixture: code pages mapped in by first use are not
 * memory the server holds). What may remain: each growing buffer's floor
 * (command queue sides 2 x 112 KiB, notes and ids 16 KiB, no send blocks),
 * the allocator's small fragments once free memory went back to the OS, and
 * V8's heap after a full GC, which moves by about 1 MiB between readings.
 * Measured after the fix: from -1.6 to +0.6 MiB on both drivers, both ways;
 * before it, +127 MiB and more on the threaded driver (both sides of the
 * command queue at the size of the largest send) and up to +60 MiB on the
 * inline driver (freed send blocks kept by malloc). 4 MiB is several times
 * the noise and far below either.
 */
const BOUND = 4 * MiB;
/** Buffers give back what went unused for a whole period (1 s): allow a few. */
const SETTLE_MS = 10_000;

async function rss(child: ChildServer): Promise<BurstRss> {
  child.send({ type: 'rss' });
  return child.next<BurstRss>('rss');
}

/** Polls the server's RSS until it is within `limit`, or the settle time runs out; returns the last reading. */
async function settledRss(child: ChildServer, limit: number): Promise<BurstRss> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const r = await rss(child);
    if (r.rss <= limit || Date.now() > deadline) return r;
    await delay(250);
  }
}

/** Waits until the server has read `bytes` in all. */
async function serverReceived(child: ChildServer, bytes: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  let r = await rss(child);
  while (r.received < bytes && Date.now() < deadline) {
    await delay(100);
    r = await rss(child);
  }
  assert.equal(r.received, bytes, 'the server read every byte sent to it');
}

function counting(socket: net.Socket): { bytes: number } {
  const c = { bytes: 0 };
  socket.on('data', (d: Buffer) => {
    c.bytes += d.length;
  });
  return c;
}

// Under AddressSanitizer (underAsan) its allocator serves every malloc, and
// keeps freed memory in its quarantine and size classes by design: what this
// test measures, glibc's allocator giving freed pages back (malloc_trim),
// cannot happen there.

function mib(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

for (const driver of DRIVERS) {
  describe(`memory after a burst (${driver} driver)`, function () {
    this.timeout(90_000);
    before(function () {
      if (underAsan()) this.skip();
    });
    let child: ChildServer | undefined;
    afterEach(async () => {
      await child?.close();
      child = undefined;
      await cleanup();
    });

    async function start(): Promise<{ socket: net.Socket; received: { bytes: number } }> {
      child = spawnFixture('burst-server', [driver], { nodeArgs: ['--expose-gc'] });
      const { port } = await child.next<BurstReady>('ready');
      const socket = await connect(port);
      const received = counting(socket);
      // A small round of the same traffic first, so that code paged in and
      // allocations made once are in the baseline, not counted as growth.
      child.send({ type: 'send', bytes: MiB, times: 1 });
      await child.next<BurstSent>('sent', 10_000);
      await waitFor(() => received.bytes >= MiB, 10_000, 'the warm-up bytes');
      socket.write(Buffer.alloc(MiB));
      await serverReceived(child, MiB);
      return { socket, received };
    }

    it(`an idle server gives back the memory of a burst: ${BURSTS} single ${BURST_BYTES / MiB} MiB sends, then as much received`, async () => {
      const { socket, received } = await start();
      const c = child as ChildServer;
      const before = await rss(c);
      const check = async (what: string): Promise<void> => {
        const after = await settledRss(c, before.rss + BOUND);
        assert.ok(
          after.rss - before.rss <= BOUND,
          `after ${what}: idle server at ${mib(after.rss)}, ${mib(before.rss)} before the burst (+${mib(after.rss - before.rss)}, bound ${mib(BOUND)}); before: ${before.detail}; after: ${after.detail}`,
        );
      };

      c.send({ type: 'send', bytes: BURST_BYTES, times: BURSTS });
      await c.next<BurstSent>('sent', 60_000);
      await waitFor(() => received.bytes >= MiB + BURSTS * BURST_BYTES, 30_000, `${mib(BURSTS * BURST_BYTES)} at the client`);
      await check('sending');

      const chunk = Buffer.alloc(BURST_BYTES, 0x63);
      for (let i = 0; i < BURSTS; i++) socket.write(chunk);
      await serverReceived(c, MiB + BURSTS * BURST_BYTES);
      await check('receiving');
    });
  });
}
