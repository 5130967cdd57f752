/**
 * The client (connector): outgoing sessions to acceptpool and node:net
 * servers, byte for byte, with the server's events, addresses, host names
 * (every address in order), IPv6 and a chosen source address.
 */
import * as assert from 'node:assert/strict';
import * as dns from 'node:dns';

import type { Session } from '../src/index';
import { DRIVERS, HOST4, HOST6, delay, randomBytes, startEcho, startServer, waitFor } from './helpers';
import { cleanupAll, connectOk, refusedPort, startClient, startNetServer, stubLookup } from './client-helpers';
import type { LookupStub } from './client-helpers';

const STUB_NAME = 'two-addresses.acceptpool.invalid';

for (const driver of DRIVERS) {
  describe(`client connect (${driver} client)`, function () {
    this.timeout(30_000);
    let stub: LookupStub | null = null;
    afterEach(async () => {
      if (stub !== null) stub.restore();
      stub = null;
      await cleanupAll();
    });

    for (const serverDriver of DRIVERS) {
      it(`echoes 1 MiB byte for byte through an acceptpool server (${serverDriver} driver)`, async () => {
        const srv = await startEcho(serverDriver);
        const h = startClient(driver);
        const s = await connectOk(h, srv.port);
        const msg = randomBytes(1024 * 1024);
        h.client.send(s.id, msg);
        const got = await h.readExactly(s.id, msg.length, 20_000);
        assert.ok(got.equals(msg), 'the echo differs from what was sent');
        await delay(50);
        assert.equal(h.receivedBytes(s.id).length, msg.length, 'bytes beyond the echo arrived');
      });
    }

    it('echoes byte for byte through a node:net echo server', async () => {
      const peer = await startNetServer();
      const h = startClient(driver);
      const s = await connectOk(h, peer.port);
      const parts = [randomBytes(1), randomBytes(1000), randomBytes(300_000), Buffer.from('tail')];
      for (const p of parts) h.client.send(s.id, p);
      const want = Buffer.concat(parts);
      const got = await h.readExactly(s.id, want.length, 20_000);
      assert.ok(got.equals(want), 'the echo differs from what was sent');
      await waitFor(() => Buffer.concat(peer.received[0] ?? []).length === want.length, 5_000, 'the peer to receive everything');
      assert.ok(Buffer.concat(peer.received[0]).equals(want), 'the node:net peer received different bytes');
    });

    it("emits 'session' exactly once, with the very Session object the connect promise resolves", async () => {
      const peer = await startNetServer();
      const h = startClient(driver);
      const seen: Session[] = [];
      h.client.on('session', (x) => seen.push(x));
      const s = await connectOk(h, peer.port);
      assert.equal(seen.length, 1, "'session' had not fired (once) by the time connect() resolved");
      assert.equal(seen[0], s, "'session' carried a different object than connect() resolved");
      await delay(50);
      assert.equal(seen.length, 1);
    });

    it("gives the session the target's remoteAddress, remotePort and remoteFamily", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, HOST4);
      assert.equal(s.remoteAddress, HOST4);
      assert.equal(s.remotePort, srv.port);
      assert.equal(s.remoteFamily, 'IPv4');
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].remoteAddress, HOST4, 'the server does not see the client on loopback');
    });

    it('receives the bytes a server writes the moment it accepts (none lost before the session is known)', async () => {
      const srv = await startServer(driver);
      srv.server.on('session', (x) => {
        x.send(`hello ${x.remotePort};`);
      });
      const h = startClient(driver);
      const sessions = await Promise.all(Array.from({ length: 50 }, () => connectOk(h, srv.port)));
      await srv.waitSessions(50);
      const text = (x: Session): string => h.receivedBytes(x.id).toString();
      await waitFor(() => sessions.every((x) => /^hello \d+;$/.test(text(x))), 10_000, 'a greeting on every session');
      await delay(50);
      const all = sessions.map(text);
      for (const g of all) assert.match(g, /^hello \d+;$/, 'a greeting was cut or had bytes appended');
      // Every greeting names a distinct server-side session.
      assert.equal(new Set(all).size, 50, `greetings were lost, merged or duplicated: ${JSON.stringify(all)}`);
    });

    it('routes 200 concurrent sessions: each receives exactly its own payload back', async () => {
      const peer = await startNetServer();
      const h = startClient(driver);
      const N = 200;
      const sessions = await Promise.all(Array.from({ length: N }, () => connectOk(h, peer.port)));
      assert.equal(new Set(sessions.map((s) => s.id)).size, N, 'two sessions share an id');
      const payloads = sessions.map((_s, i) => Buffer.concat([Buffer.from(`session ${i}:`), randomBytes(100 + (i % 13) * 500)]));
      sessions.forEach((s, i) => assert.equal(h.client.send(s.id, payloads[i]), true));
      const got = await Promise.all(sessions.map((s, i) => h.readExactly(s.id, payloads[i].length, 20_000)));
      for (let i = 0; i < N; i++) assert.ok(got[i].equals(payloads[i]), `session ${i} got someone else's or corrupted bytes`);
      await delay(100);
      for (let i = 0; i < N; i++) assert.equal(h.receivedBytes(sessions[i].id).length, payloads[i].length, `session ${i} got extra bytes`);
    });

    it('a connect that succeeds within its timeout is not closed when the timeout would have run out', async () => {
      const srv = await startEcho(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, HOST4, { timeout: 200 });
      await delay(500);
      assert.equal(h.closeById.get(s.id), undefined, 'the session was closed by its connect timeout');
      assert.equal(h.client.send(s.id, 'still here'), true);
      assert.equal((await h.readExactly(s.id, 10)).toString(), 'still here');
      assert.equal(h.client.stats().timeouts, 0);
    });

    it("connects to 'localhost' (server listening on '::', dual-stack) and echoes", async () => {
      const srv = await startEcho(driver, {}, { host: '::' });
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, 'localhost');
      const local = (await dns.promises.lookup('localhost', { all: true })).map((a) => a.address);
      assert.ok(local.includes(s.remoteAddress), `remoteAddress ${s.remoteAddress} is none of localhost's addresses ${local.join(', ')}`);
      assert.equal(s.remoteFamily, s.remoteAddress.includes(':') ? 'IPv6' : 'IPv4');
      assert.equal(s.remotePort, srv.port);
      h.client.send(s.id, 'via localhost');
      assert.equal((await h.readExactly(s.id, 13)).toString(), 'via localhost');
    });

    it("connects to 'localhost' when no host is given", async () => {
      const srv = await startServer(driver, {}, { host: '::' });
      const h = startClient(driver);
      const s = await h.client.connect(srv.port);
      assert.equal(s.remotePort, srv.port);
      await srv.waitSessions(1);
    });

    it('resolves a name with dns.lookup({ all: true }) and tries its addresses in order: the first refused, the second connects', async () => {
      // The server listens on 127.0.0.1 only, so 127.0.0.3 refuses.
      const srv = await startEcho(driver);
      stub = stubLookup(STUB_NAME, [
        { address: '127.0.0.3', family: 4 },
        { address: HOST4, family: 4 },
      ]);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, STUB_NAME);
      assert.equal(stub.calls.length, 1);
      assert.equal(stub.calls[0].options.all, true, 'lookup was not asked for all addresses');
      assert.equal(s.remoteAddress, HOST4, 'the session is not on the address that answered');
      assert.equal(h.client.stats().connectErrors, 1, 'the first address was not tried first (or its refusal not counted)');
      h.client.send(s.id, 'second address');
      assert.equal((await h.readExactly(s.id, 14)).toString(), 'second address');
    });

    it("rejects with the last address's error when every address of a name refuses", async () => {
      const port = await refusedPort();
      stub = stubLookup(STUB_NAME, [
        { address: '127.0.0.3', family: 4 },
        { address: '127.0.0.4', family: 4 },
      ]);
      const h = startClient(driver);
      let err: unknown;
      try {
        await h.client.connect(port, STUB_NAME);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof Error, 'connect resolved although no address listens');
      const e = err as Error & { code?: string; address?: string; port?: number };
      assert.equal(e.code, 'ECONNREFUSED');
      assert.equal(e.address, '127.0.0.4', 'the error is not the last address tried');
      assert.equal(e.port, port);
      assert.equal(h.client.stats().connectErrors, 2);
      await waitFor(() => h.client.stats().inUse === 0, 5_000, 'no slot left in use');
    });

    it('rejects a name that does not resolve with a getaddrinfo error (ENOTFOUND or EAI_AGAIN)', async () => {
      const h = startClient(driver);
      let err: unknown;
      try {
        await h.client.connect(80, 'no-such-host.invalid');
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof Error, "connect to 'no-such-host.invalid' resolved");
      const e = err as Error & { code?: string; syscall?: string };
      assert.ok(e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN', `code ${String(e.code)}`);
      assert.equal(e.syscall, 'getaddrinfo');
      assert.equal(h.client.stats().connects, 0, 'a connect was started for a name that does not resolve');
    });

    it("connects to ::1 with remoteFamily 'IPv6' and echoes", async () => {
      const srv = await startEcho(driver, {}, { host: HOST6 });
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, HOST6);
      assert.equal(s.remoteFamily, 'IPv6');
      assert.equal(s.remoteAddress, HOST6);
      assert.equal(s.remotePort, srv.port);
      const msg = randomBytes(5000);
      h.client.send(s.id, msg);
      assert.ok((await h.readExactly(s.id, msg.length)).equals(msg));
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].remoteAddress, HOST6);
    });

    it("reports remoteAddress of an IPv6 target written in full ('0:0:0:0:0:0:0:1') in the canonical form the server uses ('::1')", async () => {
      const srv = await startServer(driver, {}, { host: HOST6 });
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, '0:0:0:0:0:0:0:1');
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].remoteAddress, HOST6);
      assert.equal(
        s.remoteAddress,
        HOST6,
        "the client session keeps the caller's spelling instead of the address (net.Socket reports ::1)",
      );
    });

    it('binds localAddress 127.0.0.2: the server sees the connection come from 127.0.0.2', async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const s = await connectOk(h, srv.port, HOST4, { localAddress: '127.0.0.2' });
      assert.equal(s.remoteAddress, HOST4, 'remoteAddress must stay the target, not the source');
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].remoteAddress, '127.0.0.2');
    });

    it('binds localAddress with localPort: the server sees that source port', async () => {
      const srv = await startServer(driver);
      const h = startClient(driver);
      const localPort = await refusedPort('127.0.0.5');
      await connectOk(h, srv.port, HOST4, { localAddress: '127.0.0.5', localPort });
      await srv.waitSessions(1);
      assert.equal(srv.sessions[0].remoteAddress, '127.0.0.5');
      assert.equal(srv.sessions[0].remotePort, localPort);
    });
  });
}
