import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as net from 'node:net';

import { DRIVERS, HOST4, kernelBufferRoom, spawnFixture, waitFor, withTimeout } from './helpers';
import type { ChildServer } from './helpers';
import type { UploadReady, UploadRss } from './fixtures/http-upload-server';
import { parseResponses } from './http-helpers';

const MiB = 1024 * 1024;
const TOTAL = 64 * MiB;
const CHUNK = 64 * 1024;
// How far the server's RSS may move while the upload waits: its readable
// buffers (16 KiB each for the socket and the request), the batches already
// on their way to JS (threaded driver) and the allocator's noise.
const RSS_SLACK = 6 * MiB;

/** Chunk `i` of the upload: a random block stamped with its index, so order counts in the hash. */
function chunkOf(block: Buffer, i: number): Buffer {
  const c = Buffer.from(block);
  c.writeUInt32BE(i, 0);
  return c;
}

/** Resolves true on 'drain', false when none came within `ms`. */
function drained(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('drain', onDrain);
      resolve(false);
    }, ms);
    const onDrain = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    socket.once('drain', onDrain);
  });
}

describe('node:http over handoff: an upload the handler does not read stays in the kernel', function () {
  this.timeout(120_000);
  let child: ChildServer | null = null;
  let client: net.Socket | null = null;
  afterEach(async () => {
    client?.destroy();
    client = null;
    await child?.close();
    child = null;
  });

  for (const driver of DRIVERS) {
    it(`${driver}: 64 MiB unread: server RSS flat, the client stalls; then the handler reads every byte (sha256)`, async () => {
      child = spawnFixture('http-upload-server', [driver], { nodeArgs: ['--expose-gc'] });
      const { port } = await child.next<UploadReady>('ready', 10_000);
      const c = net.connect({ port, host: HOST4 });
      client = c;
      await withTimeout(new Promise<void>((resolve, reject) => c.once('connect', resolve).once('error', reject)), 5_000, 'connect');
      const received: Buffer[] = [];
      c.on('data', (d: Buffer) => received.push(d));
      // Warm up: the http code paths are paged in before the baseline.
      c.write('GET /warm HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => parseResponses(Buffer.concat(received)).responses.length === 1, 5_000, 'warm-up response');
      received.length = 0;
      child.send({ type: 'rss' });
      const baseline = (await child.next<UploadRss>('rss')).rss;

      c.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${TOTAL}\r\n\r\n`);
      await child.next('request', 5_000);
      const block = crypto.randomBytes(CHUNK);
      const hash = crypto.createHash('sha256');
      let written = 0;
      let index = 0;
      const writeUntilStall = async (stallMs: number): Promise<boolean> => {
        while (written < TOTAL) {
          const chunk = chunkOf(block, index++);
          hash.update(chunk);
          written += chunk.length;
          if (!c.write(chunk) && !(await drained(c, stallMs))) return true;
        }
        return false;
      };
      const stalled = await writeUntilStall(1000);
      assert.ok(stalled, 'the client stalled before sending everything');
      const stalledAt = written;
      const room = kernelBufferRoom();
      assert.ok(
        stalledAt < room + 4 * MiB,
        `the client stalled after ${(stalledAt / MiB).toFixed(1)} MiB (kernel room ${(room / MiB).toFixed(1)} MiB)`,
      );
      // Still stalled a while later, and the server holds nothing more.
      assert.equal(await drained(c, 500), false, 'no drain while the handler does not read');
      child.send({ type: 'rss' });
      const held = await child.next<UploadRss>('rss');
      assert.equal(held.paused, true, 'the upload session is paused in the backend');
      const grew = held.rss - baseline;
      assert.ok(
        grew < RSS_SLACK,
        `server RSS grew ${(grew / MiB).toFixed(2)} MiB over ${(baseline / MiB).toFixed(1)} MiB while ${(stalledAt / MiB).toFixed(1)} MiB waited`,
      );

      child.send({ type: 'read' });
      const resumed = await drained(c, 10_000);
      assert.ok(resumed || c.writableLength === 0, 'writing resumed once the handler reads');
      assert.equal(await writeUntilStall(10_000), false, 'the rest of the upload went through');
      await waitFor(() => parseResponses(Buffer.concat(received)).responses.length === 1, 30_000, 'the upload response');
      const [r] = parseResponses(Buffer.concat(received)).responses;
      assert.deepEqual(JSON.parse(r.body.toString()), { length: TOTAL, sha256: hash.digest('hex') });
    });
  }
});
