import * as assert from 'node:assert/strict';

import { SETUPS, cleanup, connect, connectMany, delay, randomBytes, reader, startEcho, startServer, waitFor } from './helpers';

for (const { label, driver, options } of SETUPS) {
  describe(`echo (${label})`, function () {
    this.timeout(30_000);
    afterEach(cleanup);

    it('echoes a small message byte for byte', async () => {
      const { port } = await startEcho(driver, options);
      const client = await connect(port);
      const r = reader(client);
      const msg = randomBytes(1000);
      client.write(msg);
      const got = await r.readExactly(msg.length);
      assert.ok(got.equals(msg), 'echo differs from what was sent');
      // Nothing beyond the echo.
      await delay(50);
      assert.equal(r.length, msg.length);
    });

    it('echoes a 4 MiB message byte for byte through the send queue', async () => {
      const { port, server } = await startEcho(driver, options);
      const client = await connect(port);
      const r = reader(client);
      const msg = randomBytes(4 * 1024 * 1024);
      client.write(msg);
      const got = await r.readExactly(msg.length, 20_000);
      assert.equal(Buffer.compare(got, msg), 0, '4 MiB echo differs');
      await waitFor(() => server.stats().bytesOut >= msg.length, 5_000, 'bytesOut to reach 4 MiB');
      assert.equal(server.stats().bytesIn, msg.length);
      assert.equal(server.stats().bytesOut, msg.length);
    });

    it('sends every accepted data type (string, Buffer, Uint16Array, DataView, ArrayBuffer) as its exact bytes', async () => {
      const h = await startServer(driver, options);
      const client = await connect(h.port);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      const u16 = new Uint16Array([0x0102, 0x0304]);
      const ab = new Uint8Array([9, 8, 7]).buffer;
      const backing = new Uint8Array([0, 0, 42, 43, 0]);
      const dv = new DataView(backing.buffer, 2, 2);
      const sub = Buffer.from('xxABCxx').subarray(2, 5);
      assert.equal(s.send('héllo'), true);
      assert.equal(s.send(sub), true);
      assert.equal(s.send(u16), true);
      assert.equal(s.send(dv), true);
      assert.equal(s.send(ab), true);
      const expected = Buffer.concat([
        Buffer.from('héllo', 'utf8'),
        Buffer.from('ABC'),
        Buffer.from(u16.buffer, u16.byteOffset, u16.byteLength),
        Buffer.from([42, 43]),
        Buffer.from([9, 8, 7]),
      ]);
      const got = await r.readExactly(expected.length);
      assert.ok(got.equals(expected), `got ${got.toString('hex')}, want ${expected.toString('hex')}`);
    });

    it('serves 1,000 concurrent clients, each receiving exactly its own distinct payload', async () => {
      const N = 1000;
      const { port, server } = await startEcho(driver, options);
      const clients = await connectMany(port, N);
      assert.equal(clients.length, N);
      await waitFor(() => server.stats().inUse === N, 10_000, `${N} sessions in use`);
      const payloads = clients.map((_, i) => Buffer.concat([Buffer.from(`client ${i}:`), randomBytes(200 + (i % 7) * 300)]));
      const readers = clients.map((c) => reader(c));
      clients.forEach((c, i) => c.write(payloads[i]));
      const got = await Promise.all(readers.map((r, i) => r.readExactly(payloads[i].length, 20_000)));
      for (let i = 0; i < N; i++) {
        assert.ok(got[i].equals(payloads[i]), `client ${i} got someone else's bytes or corrupted bytes`);
      }
      // And nothing more arrives for anyone.
      await delay(100);
      for (let i = 0; i < N; i++) assert.equal(readers[i].length, payloads[i].length, `client ${i} got extra bytes`);
      const total = payloads.reduce((n, p) => n + p.length, 0);
      await waitFor(() => server.stats().bytesOut === total, 5_000, 'bytesOut to match');
      assert.equal(server.stats().bytesIn, total);
      assert.equal(server.stats().accepts, N);
    });
  });
}
