/**
 * Client sessions queue and flow-control like server sessions: send()
 * reports backpressure above highWaterMark, 'drain' follows, bytes arrive in
 * order, and a queue past maxQueuedBytes closes the session ('overflow').
 */
import * as assert from 'node:assert/strict';

import { DRIVERS, delay, kernelBufferRoom, waitFor } from './helpers';
import { cleanupAll, connectOk, startClient, startNetServer } from './client-helpers';

const MiB = 1024 * 1024;

/** Chunk i is filled with the byte i & 0xff, so order and content can be checked. */
function chunk(i: number, size: number): Buffer {
  return Buffer.alloc(size, i & 0xff);
}

for (const driver of DRIVERS) {
  describe(`client backpressure (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanupAll);

    it("send() returns false above highWaterMark, and 'drain' follows once a stalled peer reads, with every byte in order", async () => {
      const HWM = 64 * 1024;
      const peer = await startNetServer(undefined, false);
      peer.server.on('connection', (socket) => socket.pause());
      const h = startClient(driver, { highWaterMark: HWM, maxQueuedBytes: 64 * MiB });
      const drains: number[] = [];
      h.client.on('drain', (x) => drains.push(x.id));
      const s = await connectOk(h, peer.port);
      await waitFor(() => peer.sockets.length === 1, 5_000, 'the peer to accept');
      let sent = 0;
      let i = 0;
      let saturated = false;
      // Past what the kernel can still take, so what stays queued stays.
      const room = kernelBufferRoom() + HWM;
      while (!saturated && i < 48) {
        const accepted = h.client.send(s.id, chunk(i, MiB));
        sent += MiB;
        i++;
        await delay(5);
        saturated = !accepted && s.bufferedAmount > HWM && sent > room;
      }
      assert.ok(saturated, `send() never reported backpressure with a queue above highWaterMark after ${sent} bytes`);
      await delay(200);
      const drainsWhileStalled = drains.length;
      await delay(200);
      assert.equal(drains.length, drainsWhileStalled, "'drain' while the peer was not reading");
      assert.ok(s.bufferedAmount > HWM, 'the queue emptied although the peer does not read');

      peer.sockets[0].resume();
      await waitFor(() => drains.length > drainsWhileStalled, 10_000, "'drain'");
      assert.ok(drains.every((id) => id === s.id));
      await waitFor(() => peer.received[0].reduce((n, b) => n + b.length, 0) >= sent, 20_000, `${sent} bytes at the peer`);
      const got = Buffer.concat(peer.received[0]);
      assert.equal(got.length, sent);
      for (let k = 0; k < i; k++) {
        assert.ok(got.subarray(k * MiB, (k + 1) * MiB).equals(chunk(k, MiB)), `chunk ${k} arrived corrupted or out of order`);
      }
      assert.equal(s.bufferedAmount, 0);
    });

    it("a client session whose queue would pass maxQueuedBytes (256 KiB) is closed with reason 'overflow'", async () => {
      const peer = await startNetServer(undefined, false);
      peer.server.on('connection', (socket) => socket.pause());
      const h = startClient(driver, { highWaterMark: 64 * 1024, maxQueuedBytes: 256 * 1024 });
      const s = await connectOk(h, peer.port);
      let sent = 0;
      const deadline = Date.now() + 10_000;
      while (!s.closed && sent < 200 * MiB && Date.now() < deadline) {
        h.client.send(s.id, chunk(sent / (64 * 1024), 64 * 1024));
        sent += 64 * 1024;
        if ((sent / (64 * 1024)) % 4 === 0) await delay(1);
      }
      const rec = await h.waitClose(s.id, 5_000);
      assert.equal(rec.reason, 'overflow');
      await waitFor(() => h.client.stats().overflows === 1, 3_000, 'stats().overflows 1');
      assert.equal(h.client.send(s.id, 'after'), false, 'send() to an overflowed session must be refused');
      await waitFor(() => h.client.stats().inUse === 0, 3_000, 'no slot in use');
    });
  });
}
