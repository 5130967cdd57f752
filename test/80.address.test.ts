import * as assert from 'node:assert/strict';
import * as net from 'node:net';

import { DRIVERS, HOST4, HOST6, cleanup, codeOf, connect, reader, startEcho, startServer } from './helpers';

for (const driver of DRIVERS) {
  describe(`addresses (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanup);

    it("over IPv4, a session reports remoteAddress 127.0.0.1, family IPv4 and the client's local port", async () => {
      const h = await startServer(driver);
      assert.deepEqual(h.server.address(), { address: HOST4, family: 'IPv4', port: h.port });
      const client = await connect(h.port, HOST4);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.remoteFamily, 'IPv4');
      assert.equal(s.remoteAddress, '127.0.0.1');
      assert.equal(s.remotePort, client.localPort);
    });

    it('address() is null from the moment close() is called, as node:net answers', async () => {
      const h = await startServer(driver);
      const plain = net.createServer();
      await new Promise<void>((resolve) => plain.listen(0, HOST4, resolve));
      const closed = new Promise<void>((resolve) => plain.close(() => resolve()));
      assert.equal(plain.address(), null, 'node:net after close()');
      await closed;
      await connect(h.port);
      await h.waitSessions(1);
      const closing = h.server.close();
      assert.equal(h.server.address(), null, 'while closing');
      await closing;
      assert.equal(h.server.address(), null, 'once closed');
    });

    it("listens on '::1' and serves an IPv6 client: remoteAddress '::1', family IPv6, the client's port, and an echo", async () => {
      const h = await startEcho(driver, {}, { host: HOST6 });
      assert.deepEqual(h.server.address(), { address: HOST6, family: 'IPv6', port: h.port });
      const client = await connect(h.port, HOST6);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.remoteFamily, 'IPv6');
      assert.equal(s.remoteAddress, '::1');
      assert.equal(s.remotePort, client.localPort);
      client.write('v6');
      assert.equal((await r.readExactly(2)).toString(), 'v6');
    });

    it("a dual-stack '::' listener reports an IPv4 client as ::ffff:127.0.0.1", async () => {
      const h = await startServer(driver, {}, { host: '::' });
      const client = await connect(h.port, HOST4);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.remoteAddress, '::ffff:127.0.0.1');
      assert.equal(s.remotePort, client.localPort);
    });

    it("with ipv6Only, a '::' listener refuses IPv4 clients and serves IPv6 ones", async () => {
      const h = await startServer(driver, { ipv6Only: true }, { host: '::' });
      const err = await new Promise<Error | null>((resolve) => {
        const s = net.connect({ port: h.port, host: HOST4 });
        s.once('error', (e) => resolve(e));
        s.once('connect', () => {
          s.destroy();
          resolve(null);
        });
      });
      assert.equal(codeOf(err), 'ECONNREFUSED');
      await connect(h.port, HOST6);
      await h.waitSessions(1);
      assert.equal(h.sessions[0].remoteAddress, '::1');
    });
  });
}
