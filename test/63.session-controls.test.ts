/**
 * Per-session socket controls and facts: setNoDelay/setKeepAlive (read back
 * from the socket with getsockopt), the local address, byte counters, and
 * the send outcome API (writableLength, isOpen()).
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';

import { createClient } from '../src/index';
import { cleanupAll, trackClient } from './client-helpers';
import {
  DRIVERS,
  HOST4,
  HOST6,
  assertThrowsCode,
  connect,
  delay,
  kernelBufferRoom,
  randomBytes,
  reader,
  startServer,
  waitFor,
} from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

for (const driver of DRIVERS) {
  describe(`per-session controls (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanupAll);

    it('setNoDelay() sets TCP_NODELAY on that socket only, as getsockopt reads it back', async () => {
      const h = await startServer(driver, { noDelay: false });
      await connect(h.port);
      await connect(h.port);
      await h.waitSessions(2);
      const [a, b] = h.sessions;
      assert.equal(h.server.querySession(a.id, false, true)?.noDelay, false);
      assert.equal(a.setNoDelay(), a);
      await waitFor(() => h.server.querySession(a.id, false, true)?.noDelay === true, 2_000, 'TCP_NODELAY on');
      assert.equal(h.server.querySession(b.id, false, true)?.noDelay, false, 'another session changed');
      a.setNoDelay(false);
      await waitFor(() => h.server.querySession(a.id, false, true)?.noDelay === false, 2_000, 'TCP_NODELAY off');
      assert.equal(h.server.setSessionNoDelay(b.id, true), true);
      await waitFor(() => h.server.querySession(b.id, false, true)?.noDelay === true, 2_000, 'TCP_NODELAY on by id');
    });

    it('setKeepAlive(true, ms) sets SO_KEEPALIVE and the probe delay in whole seconds (rounded up); 0 keeps the delay', async () => {
      const h = await startServer(driver);
      await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      const before = h.server.querySession(s.id, false, true);
      assert.equal(before?.keepAlive, false);
      assert.equal(s.setKeepAlive(true, 2500), s);
      await waitFor(() => h.server.querySession(s.id, false, true)?.keepAlive === true, 2_000, 'SO_KEEPALIVE on');
      // Wine does not read the delay back (0 then).
      const delayRead = h.server.querySession(s.id, false, true)?.keepAliveDelay;
      if (process.platform !== 'win32' || delayRead !== 0) assert.equal(delayRead, 3);
      s.setKeepAlive(true);
      await delay(50);
      assert.equal(h.server.querySession(s.id, false, true)?.keepAliveDelay, delayRead, 'initialDelay 0 changed the delay');
      assert.equal(h.server.setSessionKeepAlive(s.id, false), true);
      await waitFor(() => h.server.querySession(s.id, false, true)?.keepAlive === false, 2_000, 'SO_KEEPALIVE off');
    });

    it('localAddress, localPort and localFamily name the server side of the connection (IPv4 and IPv6)', async () => {
      // A wildcard listener: the address comes from the connection itself.
      const h = await startServer(driver, {}, { host: '0.0.0.0' });
      const c = await connect(h.port, '127.0.0.3');
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.localAddress, '127.0.0.3');
      assert.equal(s.localPort, h.port);
      assert.equal(s.localFamily, 'IPv4');
      assert.equal(c.remotePort, s.localPort);
      c.destroy();
      await h.waitClose(s.id);
      assert.equal(s.localAddress, '127.0.0.3', 'the address read while open is kept');

      const h6 = await startServer(driver, {}, { host: HOST6 });
      await connect(h6.port, HOST6);
      await h6.waitSessions(1);
      const s6 = h6.sessions[0];
      assert.equal(s6.localAddress, '::1');
      assert.equal(s6.localPort, h6.port);
      assert.equal(s6.localFamily, 'IPv6');
    });

    it('a session closed before anyone asked has no local address (null), and the getters never throw', async () => {
      const h = await startServer(driver);
      const c = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      c.destroy();
      await h.waitClose(s.id);
      assert.equal(s.localAddress, null);
      assert.equal(s.localPort, null);
      assert.equal(s.localFamily, null);
    });

    it('bytesRead and bytesWritten count exactly what crossed the socket, and bytesWritten stays exact after the close', async () => {
      const h = await startServer(driver);
      const c = await connect(h.port);
      const r = reader(c);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.bytesRead, 0);
      assert.equal(s.bytesWritten, 0);
      const up = randomBytes(300 * KiB + 7);
      c.write(up);
      await waitFor(() => s.bytesRead === up.length, 5_000, `bytesRead ${up.length} (have ${s.bytesRead})`);
      const down = randomBytes(200 * KiB + 3);
      s.send(down);
      s.send('tail');
      await r.readExactly(down.length + 4, 5_000);
      await waitFor(() => s.bytesWritten === down.length + 4, 5_000, `bytesWritten ${down.length + 4} (have ${s.bytesWritten})`);
      s.send('last');
      s.close();
      await r.readExactly(down.length + 8, 5_000);
      c.end();
      await h.waitClose(s.id);
      assert.equal(s.bytesWritten, down.length + 8, 'bytesWritten after the close');
      assert.equal(s.bytesRead, up.length);
    });

    it('a session that never read bytesWritten while open reports what it last knew; stale ids get no info', async () => {
      const h = await startServer(driver);
      const c = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      s.send('abc');
      c.destroy();
      await h.waitClose(s.id);
      assert.equal(s.bytesWritten, 0);
      assert.equal(h.server.querySession(s.id), null);
    });

    it("after send() returns false, isOpen() tells 'queued above highWaterMark' (true) from 'gone' (false)", async () => {
      const HWM = 16 * KiB;
      const h = await startServer(driver, { highWaterMark: HWM, maxQueuedBytes: 64 * MiB });
      const c = await connect(h.port);
      c.pause();
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.isOpen(), true);
      let accepted = true;
      let sent = 0;
      const room = kernelBufferRoom() + HWM;
      while ((accepted || sent <= room) && sent < 48 * MiB) {
        accepted = s.send(Buffer.alloc(MiB));
        sent += MiB;
        await delay(2);
      }
      assert.equal(accepted, false);
      assert.equal(s.isOpen(), true, 'backpressure is not gone');
      assert.ok(s.writableLength > HWM, `writableLength ${s.writableLength}`);
      assert.equal(s.writableLength, s.bufferedAmount);
      c.destroy();
      await h.waitClose(s.id);
      assert.equal(s.isOpen(), false);
      assert.equal(s.send('x'), false);
      assert.equal(s.writableLength, 0);

      const c2 = await connect(h.port);
      await h.waitSessions(2);
      const s2 = h.sessions[1];
      s2.end();
      assert.equal(s2.isOpen(), false, 'an ended session takes no more sends');
      assert.equal(s2.send('x'), false);
      c2.destroy();
    });

    it('an overflow makes send() false and isOpen() false at once', async () => {
      const h = await startServer(driver, { highWaterMark: 16 * KiB, maxQueuedBytes: 256 * KiB });
      const c = await connect(h.port);
      c.pause();
      await h.waitSessions(1);
      const s = h.sessions[0];
      let sent = 0;
      while (s.isOpen() && sent < 64 * MiB) {
        s.send(Buffer.alloc(64 * KiB));
        sent += 64 * KiB;
        if (sent % (1 * MiB) === 0) await delay(1);
      }
      assert.equal(s.isOpen(), false);
      const rec = await h.waitClose(s.id);
      assert.equal(rec.reason, 'overflow');
    });

    it('bad input is refused with ERR_ACCEPTPOOL_INVALID_ARG; stale ids are refused and counted', async () => {
      const h = await startServer(driver);
      const c = await connect(h.port);
      await h.waitSessions(1);
      const s = h.sessions[0];
      for (const bad of [1, 'yes', null]) {
        assertThrowsCode(() => s.setNoDelay(bad as unknown as boolean), 'ERR_ACCEPTPOOL_INVALID_ARG', `setNoDelay(${String(bad)})`);
        assertThrowsCode(() => s.setKeepAlive(bad as unknown as boolean), 'ERR_ACCEPTPOOL_INVALID_ARG', `setKeepAlive(${String(bad)})`);
        assertThrowsCode(
          () => h.server.setSessionNoDelay(s.id, bad as unknown as boolean),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          `setSessionNoDelay(id, ${String(bad)})`,
        );
      }
      for (const bad of [-1, 0.5, NaN, 2 ** 31, '1000']) {
        assertThrowsCode(() => s.setKeepAlive(true, bad as number), 'ERR_ACCEPTPOOL_INVALID_ARG', `setKeepAlive(true, ${String(bad)})`);
        assertThrowsCode(
          () => h.server.setSessionKeepAlive(s.id, true, bad as number),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          `setSessionKeepAlive(id, true, ${String(bad)})`,
        );
      }
      for (const bad of [-1, 1.5, '1']) {
        assertThrowsCode(
          () => h.server.setSessionNoDelay(bad as number),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          `setSessionNoDelay(${String(bad)})`,
        );
        assertThrowsCode(
          () => h.server.setSessionKeepAlive(bad as number),
          'ERR_ACCEPTPOOL_INVALID_ARG',
          `setSessionKeepAlive(${String(bad)})`,
        );
      }
      c.destroy();
      await h.waitClose(s.id);
      const before = h.server.stats().staleCommands;
      assert.equal(h.server.setSessionNoDelay(s.id, true), false);
      assert.equal(h.server.setSessionKeepAlive(s.id, true, 1000), false);
      assert.equal(h.server.stats().staleCommands, before + 2);
      assert.equal(s.setNoDelay(true), s, 'a closed session ignores it');
      assert.equal(h.server.stats().staleCommands, before + 2);
    });

    it('client sessions have the same controls: local address, counters, no-delay', async () => {
      const srv = net.createServer((sock) => sock.pipe(sock));
      await new Promise<void>((resolve) => srv.listen(0, HOST4, resolve));
      try {
        const client = trackClient(createClient({ driver, noDelay: false }));
        const port = (srv.address() as net.AddressInfo).port;
        const s = await client.connect(port, HOST4);
        assert.equal(s.localAddress, HOST4);
        assert.equal(typeof s.localPort, 'number');
        s.setNoDelay(true);
        await waitFor(() => client.querySession(s.id, false, true)?.noDelay === true, 2_000, 'TCP_NODELAY on a client session');
        s.send(Buffer.alloc(1000, 1));
        await waitFor(() => s.bytesRead === 1000, 5_000, 'the echo');
        assert.equal(s.bytesWritten, 1000);
      } finally {
        srv.close();
      }
    });
  });
}
