import * as assert from 'node:assert/strict';

import { DRIVERS, cleanup, connect, connectMany, delay, kernelBufferRoom, reader, startServer, waitFor } from './helpers';

const MiB = 1024 * 1024;

/** Chunk i is filled with the byte i & 0xff, so order and content can be checked. */
function chunk(i: number, size: number): Buffer {
  return Buffer.alloc(size, i & 0xff);
}

for (const driver of DRIVERS) {
  describe(`backpressure (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanup);

    it("send() returns false above highWaterMark, and 'drain' follows once a stalled client reads", async () => {
      const HWM = 64 * 1024;
      const h = await startServer(driver, { highWaterMark: HWM, maxQueuedBytes: 64 * MiB });
      const drains: number[] = [];
      h.server.on('drain', (s) => drains.push(s.id));
      const client = await connect(h.port);
      client.pause();
      await h.waitSessions(1);
      const s = h.sessions[0];
      let sent = 0;
      let i = 0;
      let saturated = false;
      // Past what the kernel can still take, so what stays queued stays.
      const room = kernelBufferRoom() + HWM;
      // Until send() reports backpressure while the queue really is above the
      // mark (the threaded driver may also report it for one large send the
      // kernel then takes whole).
      while (!saturated && i < 48) {
        const accepted = s.send(chunk(i, MiB));
        sent += MiB;
        i++;
        await delay(5);
        saturated = !accepted && s.bufferedAmount > HWM && sent > room;
      }
      assert.ok(saturated, `send() never reported backpressure with a queue above highWaterMark after ${sent} bytes`);
      assert.ok(s.bufferedAmount > HWM, `bufferedAmount ${s.bufferedAmount} is not above highWaterMark`);
      await delay(200);
      const drainsWhileStalled = drains.length;
      await delay(200);
      assert.equal(drains.length, drainsWhileStalled, "'drain' while the client was not reading");
      assert.ok(s.bufferedAmount > HWM, 'the queue emptied although the client does not read');
      assert.equal(s.closed, false);

      const r = reader(client);
      client.resume();
      await waitFor(() => drains.length > drainsWhileStalled, 10_000, "'drain'");
      assert.ok(drains.every((id) => id === s.id));
      await r.readExactly(sent, 20_000);
      const got = r.bytes();
      for (let k = 0; k < i; k++) {
        const part = got.subarray(k * MiB, (k + 1) * MiB);
        assert.ok(part.equals(chunk(k, MiB)), `chunk ${k} arrived corrupted or out of order`);
      }
      assert.equal(s.bufferedAmount, 0);
      await waitFor(() => h.server.stats().bytesOut === sent, 5_000, 'bytesOut');
    });

    it("a session whose queue would pass maxQueuedBytes (256 KiB) is closed with reason 'overflow'", async () => {
      const h = await startServer(driver, { highWaterMark: 64 * 1024, maxQueuedBytes: 256 * 1024 });
      const client = await connect(h.port);
      client.pause();
      await h.waitSessions(1);
      const s = h.sessions[0];
      let sent = 0;
      const deadline = Date.now() + 10_000;
      while (!s.closed && sent < 200 * MiB && Date.now() < deadline) {
        s.send(chunk(sent / (64 * 1024), 64 * 1024));
        sent += 64 * 1024;
        if ((sent / (64 * 1024)) % 4 === 0) await delay(1);
      }
      const rec = await h.waitClose(s.id, 5_000);
      assert.equal(rec.reason, 'overflow');
      await waitFor(() => h.server.stats().overflows === 1, 3_000, 'stats().overflows 1');
      assert.equal(s.send('after'), false, 'send() to an overflowed session must be refused');
      // The slot is free once the backend holds nothing of it: at once on
      // Linux, once the cancelled send is back with IOCP.
      await waitFor(() => h.server.stats().inUse === 0, 3_000, 'inUse 0');
    });

    it('a synchronous burst of 40 MiB of sends (more than any internal command buffer) arrives whole and in order', async () => {
      const h = await startServer(driver, { maxQueuedBytes: 64 * MiB });
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      const CHUNKS = 40;
      for (let i = 0; i < CHUNKS; i++) s.send(chunk(i, MiB));
      await r.readExactly(CHUNKS * MiB, 30_000);
      const got = r.bytes();
      for (let k = 0; k < CHUNKS; k++) {
        assert.ok(got.subarray(k * MiB, (k + 1) * MiB).equals(chunk(k, MiB)), `chunk ${k} arrived corrupted or out of order`);
      }
      assert.equal(s.closed, false);
      await waitFor(() => h.server.stats().bytesOut === CHUNKS * MiB, 5_000, 'bytesOut');
    });

    it('50 clients uploading at full speed are all read: a batch that fills part-way does not starve the sessions after it', async () => {
      const N = 50;
      const h = await startServer(driver, {}, { record: false });
      const bytes = new Map<number, number>();
      h.server.on('data', (s, c) => bytes.set(s.id, (bytes.get(s.id) ?? 0) + c.length));
      const block = Buffer.alloc(64 * 1024, 1);
      const clients = await connectMany(h.port, N);
      for (const c of clients) {
        const pump = (): void => {
          while (!c.destroyed && c.write(block)) {
            // until the socket pushes back
          }
          if (!c.destroyed) c.once('drain', pump);
        };
        pump();
      }
      await h.waitSessions(N);
      // Every session must keep being read, not only the first few.
      const readAll = (min: number): boolean => h.sessions.every((s) => (bytes.get(s.id) ?? 0) >= min);
      await waitFor(() => readAll(MiB), 10_000, 'every session read').catch(() => undefined);
      for (const c of clients) c.destroy();
      const read = h.sessions.filter((s) => (bytes.get(s.id) ?? 0) >= MiB).length;
      assert.equal(read, N, `only ${read}/${N} sessions had ${MiB} bytes read within 10 s`);
    });
  });
}
