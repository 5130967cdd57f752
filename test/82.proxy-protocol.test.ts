/**
 * PROXY protocol v1/v2 (server option proxyProtocol) over loopback: clients
 * bound to distinct 127.0.0.x sources play trusted balancers and untrusted
 * peers; the headers they send are built here, byte by byte, from the spec.
 */
import * as assert from 'node:assert/strict';

import { createClient, createServer } from '../src/index';
import type { ProxyHeaderError, Server } from '../src/index';
import { DRIVERS, HOST4, assertThrowsCode, cleanup, connect, delay, reader, startEcho, startServer, waitFor } from './helpers';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header: version/command byte, family/transport byte, then the block. */
function v2(verCmd: number, fam: number, block: Buffer): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = verCmd;
  fixed[1] = fam;
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([SIGNATURE, fixed, block]);
}

function tlv(type: number, value: Buffer | string): Buffer {
  const v = Buffer.from(value);
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(v.length, 1);
  return Buffer.concat([head, v]);
}

function ipv6(text: string): Buffer {
  // Only full 8-group addresses here: enough for the tests.
  return Buffer.from(text.split(':').flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]));
}

/** Collects the server's 'proxyError' events. */
function proxyErrors(server: Server): ProxyHeaderError[] {
  const errors: ProxyHeaderError[] = [];
  server.on('proxyError', (err) => errors.push(err));
  return errors;
}

for (const driver of DRIVERS) {
  describe(`PROXY protocol (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanup);

    const trusted = { proxyProtocol: { trusted: ['127.0.0.2/32', '127.0.0.3/32'] } };

    it('a v1 header from a trusted peer names the client, and the bytes after it in the same segment are the first data', async () => {
      const h = await startEcho(driver, trusted);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      const r = reader(client);
      client.write(`PROXY TCP4 203.0.113.9 198.51.100.1 51000 443\r\nhello`);
      assert.equal((await r.readExactly(5)).toString(), 'hello');
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.remoteAddress, '203.0.113.9');
      assert.equal(s.remotePort, 51000);
      assert.equal(s.remoteFamily, 'IPv4');
      assert.deepEqual(s.proxy, {
        version: 1,
        command: 'proxy',
        family: 'IPv4',
        transport: 'stream',
        source: { address: '203.0.113.9', port: 51000 },
        destination: { address: '198.51.100.1', port: 443 },
        tlvs: [],
      });
      const st = h.server.stats();
      assert.equal(st.proxyHeaders, 1);
      assert.equal(st.accepts, 1);
    });

    it('a v2 IPv6 header gives the client and every TLV of the header (AWS 0xEA among several)', async () => {
      const h = await startServer(driver, trusted);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.3');
      const src = ipv6('2001:0db8:0000:0000:0000:0000:0000:0007');
      const dst = ipv6('2001:0db8:0000:0000:0000:0000:0000:0001');
      const ports = Buffer.alloc(4);
      ports.writeUInt16BE(60000, 0);
      ports.writeUInt16BE(8443, 2);
      const aws = Buffer.concat([Buffer.from([0x01]), Buffer.from('vpce-08d2bf15fac5001c9')]);
      const tlvs = [tlv(0x01, 'h2'), tlv(0x02, 'api.example.com'), tlv(0xea, aws), tlv(0x05, 'req-42')];
      client.write(Buffer.concat([v2(0x21, 0x21, Buffer.concat([src, dst, ports, ...tlvs])), Buffer.from('x')]));
      await h.waitSessions(1);
      await waitFor(() => h.receivedBytes(h.sessions[0].id).length === 1, 5_000, 'the byte after the header');
      const s = h.sessions[0];
      assert.equal(s.remoteAddress, '2001:db8::7');
      assert.equal(s.remoteFamily, 'IPv6');
      assert.equal(s.remotePort, 60000);
      assert.equal(s.proxy?.version, 2);
      assert.deepEqual(s.proxy?.destination, { address: '2001:db8::1', port: 8443 });
      assert.deepEqual(
        s.proxy?.tlvs.map((t) => [t.type, t.value.toString('latin1')]),
        [
          [0x01, 'h2'],
          [0x02, 'api.example.com'],
          [0xea, aws.toString('latin1')],
          [0x05, 'req-42'],
        ],
      );
      assert.equal(h.receivedBytes(s.id).toString(), 'x');
    });

    it('a v2 UNIX header keeps the paths and leaves the connection its own peer', async () => {
      const h = await startServer(driver, trusted);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      const block = Buffer.alloc(216);
      block.write('/run/app/client.sock', 0);
      block.write('/run/app/server.sock', 108);
      client.write(v2(0x21, 0x31, block));
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.remoteAddress, '127.0.0.2');
      assert.equal(s.remotePort, client.localPort);
      assert.deepEqual(s.proxy?.source, { address: '/run/app/client.sock', port: 0 });
      assert.deepEqual(s.proxy?.destination, { address: '/run/app/server.sock', port: 0 });
      assert.equal(s.proxy?.family, 'unix');
    });

    it('a v2 LOCAL header (a health check) is a direct connection from the balancer', async () => {
      const h = await startEcho(driver, trusted);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.3');
      const r = reader(client);
      client.write(Buffer.concat([v2(0x20, 0x00, Buffer.alloc(0)), Buffer.from('ping')]));
      assert.equal((await r.readExactly(4)).toString(), 'ping');
      const s = h.sessions[0];
      assert.equal(s.remoteAddress, '127.0.0.3');
      assert.equal(s.remotePort, client.localPort);
      assert.equal(s.proxy?.command, 'local');
      assert.equal(s.proxy?.source, null);
      assert.equal(h.server.stats().proxyLocal, 1);
    });

    it('a peer outside the trusted ranges is refused even with a valid header, counted, and reported', async () => {
      const h = await startServer(driver, trusted);
      const errors = proxyErrors(h.server);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.4');
      const localPort = client.localPort;
      const r = reader(client);
      client.write('PROXY TCP4 203.0.113.9 198.51.100.1 51000 443\r\nGET /\r\n');
      await r.waitClose();
      await waitFor(() => errors.length === 1, 5_000, "'proxyError'");
      assert.equal(errors[0].code, 'ERR_ACCEPTPOOL_PROXY_HEADER');
      assert.equal(errors[0].reason, 'untrusted');
      assert.equal(errors[0].remoteAddress, '127.0.0.4');
      assert.equal(errors[0].remotePort, localPort);
      assert.equal(r.length, 0);
      assert.equal(h.sessions.length, 0);
      const st = h.server.stats();
      assert.equal(st.proxyUntrusted, 1);
      assert.equal(st.inUse, 0);
      // A trusted peer is still served.
      const ok = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      ok.write('PROXY UNKNOWN\r\n');
      await h.waitSessions(1);
      assert.equal(h.sessions[0].remoteAddress, '127.0.0.2');
    });

    it('a malformed header closes the connection with ERR_ACCEPTPOOL_PROXY_HEADER and what was wrong, and frees its slot', async () => {
      const h = await startServer(driver, trusted);
      const errors = proxyErrors(h.server);
      const bad = [
        'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
        'PROXY TCP4 203.0.113.09 198.51.100.1 51000 443\r\n',
        'PROXY TCP4 203.0.113.9 198.51.100.1 70000 443\r\n',
        'PROXY UNKNOWN\n',
      ];
      const wanted = ['no PROXY protocol signature', 'malformed address', 'malformed port', 'malformed v1 line'];
      for (const text of bad) {
        const client = await connect(h.port, HOST4, 5_000, '127.0.0.2');
        const r = reader(client);
        client.write(text);
        await r.waitClose();
      }
      const v2bad = await connect(h.port, HOST4, 5_000, '127.0.0.3');
      const big = Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
      const r2 = reader(v2bad);
      v2bad.write(big);
      await r2.waitClose();
      await waitFor(() => errors.length === 5, 5_000, "five 'proxyError' events");
      assert.deepEqual(
        errors.map((e) => e.reason),
        ['malformed', 'malformed', 'malformed', 'malformed', 'malformed'],
      );
      for (let i = 0; i < wanted.length; i++) assert.match(errors[i].message, new RegExp(wanted[i]));
      assert.match(errors[4].message, /header longer than the limit/);
      assert.equal(h.sessions.length, 0);
      await waitFor(() => h.server.stats().inUse === 0, 5_000, 'every slot back');
      assert.equal(h.server.stats().proxyMalformed, 5);
    });

    it('a header split across segments is put together; the session appears once it is whole', async () => {
      const h = await startServer(driver, trusted);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      client.setNoDelay(true);
      const header = Buffer.concat([
        v2(0x21, 0x11, Buffer.concat([Buffer.from([192, 0, 2, 1, 192, 0, 2, 2, 0x30, 0x39, 0, 80]), tlv(0x02, 'split.example')])),
      ]);
      for (const [from, to] of [
        [0, 7],
        [7, 15],
        [15, 20],
        [20, header.length],
      ]) {
        client.write(header.subarray(from, to));
        await delay(60);
        if (to < header.length) assert.equal(h.sessions.length, 0, `a session before byte ${to}`);
      }
      client.write('after');
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.remoteAddress, '192.0.2.1');
      assert.equal(s.remotePort, 12345);
      assert.equal(s.proxy?.tlvs[0].value.toString(), 'split.example');
      await waitFor(() => h.receivedBytes(s.id).toString() === 'after', 5_000, 'the bytes after the header');
    });

    it('a header that dribbles in (slowloris) or never comes is refused at the timeout, counted, and its slot freed', async () => {
      const h = await startServer(driver, { proxyProtocol: { trusted: ['127.0.0.2/32'], timeout: 1000 } });
      const errors = proxyErrors(h.server);
      const started = Date.now();
      const slow = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      const silent = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      const rs = reader(slow);
      const rq = reader(silent);
      const line = 'PROXY TCP4 203.0.113.9 198.51.100.1 51000 443\r\n';
      let i = 0;
      const drip = setInterval(() => {
        if (!rs.closed && i < line.length - 1) slow.write(line[i++]);
      }, 150);
      try {
        await rs.waitClose(6_000);
        await rq.waitClose(6_000);
      } finally {
        clearInterval(drip);
      }
      const took = Date.now() - started;
      // 1 s timeout at the engine's 1 s tick: closed after 1 to 2 s.
      assert.ok(took >= 900 && took < 4_000, `closed after ${took} ms`);
      await waitFor(() => errors.length === 2, 5_000, "two 'proxyError' events");
      assert.deepEqual(
        errors.map((e) => e.reason),
        ['timeout', 'timeout'],
      );
      assert.equal(h.sessions.length, 0);
      const st = h.server.stats();
      assert.equal(st.proxyTimeouts, 2);
      assert.equal(st.timeouts, 0);
      assert.equal(st.inUse, 0);
    });

    it('many refused connections leave no slot behind, and the server keeps serving', async () => {
      const h = await startEcho(driver, { ...trusted, poolSize: 8, poolGrowth: 8 });
      for (let wave = 0; wave < 5; wave++) {
        const clients = await Promise.all(
          Array.from({ length: 20 }, (_, k) => connect(h.port, HOST4, 5_000, k % 2 === 0 ? '127.0.0.2' : '127.0.0.9')),
        );
        const readers = clients.map((c) => reader(c));
        clients.forEach((c, k) => (k % 4 === 0 ? c.destroy() : c.write('garbage\r\n')));
        await Promise.all(readers.map((r) => r.waitClose()));
      }
      await waitFor(() => h.server.stats().inUse === 0, 5_000, 'every slot back');
      const st = h.server.stats();
      assert.equal(st.proxyUntrusted, 50);
      assert.equal(st.proxyMalformed + st.proxyAborted, 50);
      assert.equal(h.sessions.length, 0);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.3');
      const r = reader(client);
      client.write('PROXY TCP4 10.1.2.3 10.0.0.1 1000 80\r\nstill here');
      assert.equal((await r.readExactly(10)).toString(), 'still here');
      assert.equal(h.sessions[0].remoteAddress, '10.1.2.3');
    });

    it("a dual-stack '::' listener matches IPv4 ranges against its IPv4-mapped peers", async () => {
      const h = await startServer(driver, { proxyProtocol: { trusted: ['127.0.0.2/32'] } }, { host: '::' });
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      client.write('PROXY TCP4 203.0.113.5 198.51.100.1 4000 443\r\n');
      await h.waitSessions(1);
      assert.equal(h.sessions[0].remoteAddress, '203.0.113.5');
    });

    it('server.close() with connections still awaiting their header closes them and resolves', async () => {
      const h = await startServer(driver, trusted);
      const client = await connect(h.port, HOST4, 5_000, '127.0.0.2');
      const r = reader(client);
      client.write('PROXY TCP4 ');
      await delay(100);
      assert.equal(h.server.stats().inUse, 1);
      await h.server.close();
      await r.waitClose();
    });
  });
}

describe('PROXY protocol options', () => {
  afterEach(cleanup);

  it('rejects trusted lists that are empty, not strings, or bad ranges, and unknown keys', () => {
    const bad: unknown[] = [
      {},
      { trusted: [] },
      { trusted: '127.0.0.1' },
      { trusted: [42] },
      { trusted: ['127.0.0.1/33'] },
      { trusted: ['::1/129'] },
      { trusted: ['10.0.0.0/08'] },
      { trusted: ['not-an-ip/8'] },
      { trusted: ['127.0.0.1'], timeout: 0 },
      { trusted: ['127.0.0.1'], timeout: 1.5 },
      { trusted: ['127.0.0.1'], extra: true },
      null,
      ['127.0.0.1'],
    ];
    for (const proxyProtocol of bad) {
      assertThrowsCode(() => createServer({ proxyProtocol } as never), 'ERR_ACCEPTPOOL_INVALID_ARG', JSON.stringify(proxyProtocol));
    }
  });

  it('takes IPv4, IPv6 and bare addresses, and is a server option only', async () => {
    await createServer({
      proxyProtocol: { trusted: ['10.0.0.0/8', '::1/128', '127.0.0.1', 'fe80::/10', '::ffff:10.0.0.0/104'], timeout: 5000 },
    }).close();
    assertThrowsCode(() => createClient({ proxyProtocol: { trusted: ['::1'] } } as never), 'ERR_ACCEPTPOOL_INVALID_ARG', 'client');
  });
});
