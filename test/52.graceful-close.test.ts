/**
 * A graceful close delivers every byte it accepted, even when the peer is
 * still sending: flush, FIN, then read and discard what the peer sends until
 * its FIN (or the closeLinger deadline, where it is reset). Closing a socket
 * with unread input would make the kernel reset the connection, and a reset
 * can destroy reply bytes already handed to the kernel.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as net from 'node:net';

import type { Driver, ServerOptions, Session } from '../src/index';
import { DRIVERS, HOST4, cleanup, codeOf, delay, randomBytes, startServer, waitFor, withTimeout } from './helpers';
import type { Harness } from './helpers';

const MiB = 1024 * 1024;
const UPLOAD_CHUNK = Buffer.alloc(64 * 1024, 0x5a);

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/**
 * A client that uploads as fast as the server takes it while reading
 * everything the server sends. It keeps sending after the server's FIN, until
 * it has sent at least `minBytes` (then it ends), or for ever (`forever`).
 */
class Uploader {
  readonly chunks: Buffer[] = [];
  length = 0;
  written = 0;
  ended = false;
  closed = false;
  error: Error | undefined;
  /** Bytes received when the server's FIN arrived (-1: not yet). */
  lengthAtEnd = -1;
  /** The client's port (the server's session.remotePort). */
  readonly port: number;
  /** 'end' and 'error' in the order they came. */
  readonly order: string[] = [];
  private stopped = false;

  private constructor(
    readonly socket: net.Socket,
    private readonly minBytes: number,
    private readonly forever: boolean,
  ) {
    this.port = socket.localPort ?? -1;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
    });
    socket.on('end', () => {
      this.ended = true;
      this.order.push('end');
      this.lengthAtEnd = this.length;
    });
    socket.on('error', (err: Error) => {
      this.error = err;
      this.order.push('error');
      this.stopped = true;
    });
    socket.on('close', () => {
      this.closed = true;
      this.stopped = true;
    });
    this.pump();
  }

  static connect(port: number, minBytes: number, forever = false): Promise<Uploader> {
    return new Promise((resolve, reject) => {
      // allowHalfOpen: our writing does not stop at the server's FIN.
      const socket = net.connect({ port, host: HOST4, allowHalfOpen: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new Uploader(socket, minBytes, forever));
      });
    });
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }

  /** What went wrong for this client, or '' if it got `expected` and then a clean EOF. */
  verdict(expected: Buffer): string {
    const problems: string[] = [];
    if (this.error !== undefined) problems.push(`error ${codeOf(this.error) ?? this.error.message}`);
    if (!this.ended) problems.push('no EOF');
    if (this.length !== expected.length) problems.push(`got ${this.length} of ${expected.length} bytes`);
    else if (sha256(this.bytes()) !== sha256(expected)) problems.push('bytes differ');
    if (this.lengthAtEnd !== -1 && this.lengthAtEnd !== expected.length) problems.push(`EOF after ${this.lengthAtEnd} bytes`);
    return problems.join(', ');
  }

  destroy(): void {
    this.stopped = true;
    this.socket.destroy();
  }

  private pump(): void {
    while (!this.stopped) {
      if (!this.forever && this.ended && this.written >= this.minBytes) {
        this.stopped = true;
        this.socket.end();
        return;
      }
      this.written += UPLOAD_CHUNK.length;
      if (!this.socket.write(UPLOAD_CHUNK)) {
        this.socket.once('drain', () => this.pump());
        return;
      }
    }
  }
}

const uploaders = new Set<Uploader>();

async function upload(port: number, minBytes: number, forever = false): Promise<Uploader> {
  const u = await Uploader.connect(port, minBytes, forever);
  uploaders.add(u);
  return u;
}

/** A reset shows as ECONNRESET, or EPIPE when a write met it first. */
function assertReset(u: Uploader): void {
  const code = codeOf(u.error);
  assert.ok(code === 'ECONNRESET' || code === 'EPIPE', `the client saw ${code ?? 'no error'}, not a reset`);
}

/** Counts 'data' events per session id. */
function countData(h: Harness): Map<number, number> {
  const counts = new Map<number, number>();
  h.server.on('data', (s) => counts.set(s.id, (counts.get(s.id) ?? 0) + 1));
  return counts;
}

/** Resolves with each session once its first bytes have arrived (its upload is under way). */
function onFirstData(h: Harness, fn: (s: Session) => void): void {
  const seen = new Set<number>();
  h.server.on('data', (s) => {
    if (seen.has(s.id)) return;
    seen.add(s.id);
    fn(s);
  });
}

async function start(driver: Driver, options: ServerOptions = {}): Promise<Harness> {
  return startServer(driver, { maxQueuedBytes: 64 * MiB, ...options }, { record: false });
}

for (const driver of DRIVERS) {
  describe(`graceful close of a session whose peer is still sending (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(async () => {
      for (const u of uploaders) u.destroy();
      uploaders.clear();
      await cleanup();
    });

    const closes: [string, (h: Harness, s: Session) => void, string][] = [
      ['server.closeSession(id)', (h, s) => h.server.closeSession(s.id), 'local'],
      ['session.close()', (_h, s) => s.close(), 'local'],
      ['server.close()', (h) => void h.server.close(), 'shutdown'],
    ];
    for (const [what, close, reason] of closes) {
      it(`${what} during an 8 MiB upload: the client gets all of an 8 MiB reply (hash-checked), then a clean EOF`, async () => {
        const reply = randomBytes(8 * MiB);
        const h = await start(driver);
        onFirstData(h, (s) => {
          s.send(reply);
          close(h, s);
        });
        const u = await upload(h.port, 8 * MiB);
        await withTimeout(
          waitFor(() => u.closed, 20_000, 'the client to close'),
          25_000,
          'client close',
        );
        assert.equal(u.verdict(reply), '', `the client did not get the reply intact and a clean end (uploaded ${u.written} bytes)`);
        const rec = await h.waitClose(h.sessions[0].id);
        assert.equal(rec.reason, reason);
        assert.equal(rec.err, undefined);
        const st = h.server.stats();
        assert.ok(st.lingers >= 1 && st.lingerEnds >= 1, `lingers ${st.lingers}, lingerEnds ${st.lingerEnds}`);
        assert.equal(st.lingerTimeouts, 0);
      });
    }

    it('server.close() while 50 clients upload: every client gets its whole reply, then a clean EOF', async () => {
      const N = 50;
      const h = await start(driver);
      const byPort = new Map<number, Buffer>();
      let uploading = 0;
      let closing: Promise<void> | null = null;
      const us: Uploader[] = [];
      onFirstData(h, (s) => {
        const reply = randomBytes(512 * 1024);
        byPort.set(s.remotePort, reply);
        s.send(reply);
        if (++uploading === N) closing = h.server.close();
      });
      for (let i = 0; i < N; i++) us.push(await upload(h.port, MiB));
      await waitFor(() => closing !== null, 10_000, `all ${N} uploads to start (have ${uploading})`);
      await withTimeout(closing as unknown as Promise<void>, 20_000, 'server.close()');
      await waitFor(() => us.every((u) => u.closed), 10_000, 'every client to close');
      const bad = us.map((u) => u.verdict(byPort.get(u.port) ?? Buffer.alloc(0))).filter((v) => v !== '');
      assert.equal(bad.length, 0, `${N - bad.length}/${N} clients got everything; the others: ${bad.slice(0, 5).join('; ')}`);
      assert.ok(h.closes.every((c) => c.reason === 'shutdown' && c.err === undefined));
    });

    it("after close() no 'data' or 'end' reaches JS; what the peer sends is read and discarded", async () => {
      const h = await start(driver);
      const counts = countData(h);
      let ends = 0;
      h.server.on('end', () => ends++);
      let atClose = -1;
      let bytesInAtClose = 0;
      onFirstData(h, (s) => {
        s.send(randomBytes(4 * MiB));
        s.close();
        atClose = counts.get(s.id) ?? 0;
        bytesInAtClose = h.server.stats().bytesIn;
      });
      const u = await upload(h.port, 8 * MiB);
      await waitFor(() => u.closed, 20_000, 'the client to close');
      const s = h.sessions[0];
      await h.waitClose(s.id);
      assert.equal(counts.get(s.id), atClose, `'data' events after close(): ${(counts.get(s.id) ?? 0) - atClose}`);
      assert.equal(ends, 0, "'end' after close()");
      const st = h.server.stats();
      assert.ok(st.bytesDiscarded > 0, 'nothing was discarded although the client kept sending');
      // The threaded driver may have read a little more before the close
      // reached its thread: at most the batches in flight, not the upload.
      assert.ok(st.bytesIn - bytesInAtClose < 4 * MiB, `bytesIn grew by ${st.bytesIn - bytesInAtClose} after close()`);
      assert.ok(st.bytesDiscarded >= 4 * MiB, `only ${st.bytesDiscarded} bytes discarded`);
      assert.ok(
        st.bytesIn + st.bytesDiscarded >= u.written,
        `bytesIn ${st.bytesIn} + bytesDiscarded ${st.bytesDiscarded} < ${u.written} uploaded`,
      );
    });

    it('a peer that never stops sending is reset at the closeLinger deadline (1 s) and its slot is freed', async () => {
      const reply = randomBytes(MiB);
      const h = await start(driver, { closeLinger: 1000 });
      let closedAt = 0;
      onFirstData(h, (s) => {
        s.send(reply);
        s.close();
        closedAt = Date.now();
      });
      const u = await upload(h.port, 0, true);
      await h.waitSessions(1);
      const rec = await h.waitClose(h.sessions[0].id, 10_000);
      const lingered = rec.at - closedAt;
      assert.ok(lingered >= 900 && lingered <= 3_000, `closed ${lingered} ms after close(); want the 1 s deadline (1 s resolution)`);
      assert.equal(rec.reason, 'local');
      await waitFor(() => u.closed, 5_000, 'the client to be reset');
      assert.equal(u.length, reply.length, 'the reply was not delivered before the deadline');
      assert.deepEqual(u.order.slice(0, 2), ['end', 'error'], 'the EOF did not come before the reset');
      assert.equal(sha256(u.bytes()), sha256(reply));
      assertReset(u);
      const st = h.server.stats();
      assert.equal(st.inUse, 0, 'the slot is still taken');
      assert.equal(st.lingerTimeouts, 1);
    });

    it("server.close() resets a peer that keeps sending past closeLinger with reason 'shutdown', and resolves", async () => {
      const reply = randomBytes(MiB);
      const h = await start(driver, { closeLinger: 1000 });
      let closing: Promise<void> | null = null;
      onFirstData(h, (s) => {
        s.send(reply);
        closing = h.server.close();
      });
      const u = await upload(h.port, 0, true);
      await waitFor(() => closing !== null, 5_000, 'close() to be called');
      const t0 = Date.now();
      await withTimeout(closing as unknown as Promise<void>, 10_000, 'server.close()');
      assert.ok(Date.now() - t0 >= 800, `close() resolved after ${Date.now() - t0} ms, before the linger deadline`);
      assert.equal(h.closes[0]?.reason, 'shutdown');
      await waitFor(() => u.closed, 5_000, 'the client to be reset');
      assert.equal(u.length, reply.length);
      assert.equal(sha256(u.bytes()), sha256(reply));
      assertReset(u);
    });

    it('a silent peer: the session stays until the peer answers our FIN, or closes at once with closeLinger 0', async () => {
      for (const closeLinger of [5000, 0]) {
        const h = await start(driver, { closeLinger });
        const c = net.connect({ port: h.port, host: HOST4, allowHalfOpen: true });
        c.on('error', () => undefined);
        let gotEnd = false;
        c.on('end', () => {
          gotEnd = true;
        });
        c.resume();
        await h.waitSessions(1);
        const s = h.sessions[0];
        s.send('bye');
        s.close();
        await waitFor(() => gotEnd, 5_000, "the server's FIN");
        if (closeLinger === 0) {
          await h.waitClose(s.id, 2_000);
        } else {
          await delay(300);
          assert.equal(s.closed, false, 'the session closed before the peer answered our FIN');
          c.end();
          assert.equal((await h.waitClose(s.id, 3_000)).reason, 'local');
        }
        c.destroy();
        await cleanup();
      }
    });
  });
}
