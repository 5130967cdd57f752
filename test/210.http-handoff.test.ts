import * as assert from 'node:assert/strict';
import * as http from 'node:http';

import { DRIVERS, HOST4, cleanup, delay, randomBytes, waitFor, withTimeout } from './helpers';
import { RawClient, destroyRawClients, request, sha256, startHandoff } from './http-helpers';

describe('node:http over server.handoff()', function () {
  this.timeout(30_000);
  afterEach(async () => {
    destroyRawClients();
    await cleanup();
  });

  for (const driver of DRIVERS) {
    describe(driver, () => {
      it('keep-alive: 50 requests on one connection, one session', async () => {
        const t = await startHandoff(
          driver,
          http.createServer((req, res) => res.end(`hello ${req.url}`)),
        );
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          for (let i = 0; i < 50; i++) {
            const r = await request(http, t.port, { path: `/n${i}`, agent });
            assert.equal(r.status, 200);
            assert.equal(r.body.toString(), `hello /n${i}`);
          }
        } finally {
          agent.destroy();
        }
        assert.equal(t.sockets.length, 1);
        assert.equal(t.server.stats().accepts, 1);
      });

      it('pipelining: five requests in one write get five responses in order, a slow first one included', async () => {
        const t = await startHandoff(
          driver,
          http.createServer((req, res) => {
            if (req.url === '/slow') setTimeout(() => res.end('/slow'), 100);
            else res.end(req.url);
          }),
        );
        const c = await RawClient.connect(t.port);
        const paths = ['/slow', '/a', '/b', '/c', '/d'];
        c.socket.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
        const responses = await c.responses(5);
        assert.deepEqual(
          responses.map((r) => r.body.toString()),
          paths,
        );
        assert.equal(t.sockets.length, 1);
      });

      it('chunked upload and chunked response: every byte both ways', async () => {
        const t = await startHandoff(
          driver,
          http.createServer((req, res) => {
            const parts: Buffer[] = [];
            req.on('data', (c: Buffer) => parts.push(c));
            req.on('end', () => {
              const all = Buffer.concat(parts);
              res.setHeader('X-Request-Encoding', String(req.headers['transfer-encoding']));
              for (let at = 0; at < all.length; at += 7777) res.write(all.subarray(at, at + 7777));
              res.end();
            });
          }),
        );
        const sent = randomBytes(1024 * 1024);
        const r = await request(http, t.port, { method: 'POST', path: '/echo', agent: false }, (req) => {
          // Each chunk once the one before is written: chunks buffered
          // behind a pending write leave node:net as one writev of three
          // pieces per chunk, more than Wine's WSASend takes (EMSGSIZE).
          const send = async (): Promise<void> => {
            for (let at = 0; at < sent.length; at += 4096) {
              await new Promise<void>((resolve, reject) =>
                req.write(sent.subarray(at, at + 4096), (err) => (err ? reject(err) : resolve())),
              );
            }
            req.end();
          };
          send().catch((err: unknown) => req.destroy(err as Error));
        });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-request-encoding'], 'chunked');
        assert.equal(r.headers['transfer-encoding'], 'chunked');
        assert.equal(r.body.length, sent.length);
        assert.equal(sha256(r.body), sha256(sent));
      });

      it('Connection: close: the response, then the server ends the connection (reason local)', async () => {
        const t = await startHandoff(
          driver,
          http.createServer((_req, res) => res.end('bye')),
        );
        const c = await RawClient.connect(t.port);
        c.socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        const [r] = await c.responses(1);
        assert.equal(r.body.toString(), 'bye');
        assert.equal(r.headers.connection, 'close');
        await waitFor(() => c.ended, 5_000, 'the server ended the connection');
        const [close] = await Promise.all([t.h.waitClose(t.h.sessions[0].id)]);
        assert.equal(close.reason, 'local');
        assert.equal(t.sockets[0].destroyed, true);
      });

      for (const how of ['ends', 'resets'] as const) {
        it(`an aborted upload (the client ${how} mid-body): the handler sees it aborted, the session closes`, async () => {
          let seen: { complete: boolean; closed: boolean } | null = null;
          const t = await startHandoff(
            driver,
            http.createServer((req, res) => {
              req.on('data', () => undefined);
              req.on('error', () => undefined);
              res.on('close', () => {
                seen = { complete: req.complete, closed: true };
              });
            }),
          );
          const c = await RawClient.connect(t.port);
          c.socket.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
          c.socket.write(Buffer.alloc(1000, 1));
          await t.h.waitSessions(1);
          await delay(50);
          if (how === 'ends') c.socket.end();
          else c.socket.resetAndDestroy();
          await waitFor(() => seen !== null, 5_000, 'the response closed');
          assert.deepEqual(seen, { complete: false, closed: true });
          await t.h.waitCloses(1);
          await waitFor(() => t.server.stats().inUse === 0, 5_000, 'no session left');
        });
      }

      it('keepAliveTimeout closes an idle keep-alive connection (SessionSocket.setTimeout)', async () => {
        const hs = http.createServer((_req, res) => res.end('ok'));
        hs.keepAliveTimeout = 300;
        const t = await startHandoff(driver, hs);
        const c = await RawClient.connect(t.port);
        c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await c.responses(1);
        const start = Date.now();
        await waitFor(() => c.ended, 5_000, 'the server closed the idle connection');
        const took = Date.now() - start;
        assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
      });

      it('requestTimeout answers headers that never finish with 408 (handoff emits listening on the target)', async () => {
        const hs = http.createServer({ connectionsCheckingInterval: 100, headersTimeout: 300, requestTimeout: 300 }, (_req, res) =>
          res.end(),
        );
        const t = await startHandoff(driver, hs);
        const c = await RawClient.connect(t.port);
        c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
        const [r] = await c.responses(1, 5_000);
        assert.equal(r.status, 408);
        await waitFor(() => c.closed || c.ended, 5_000, 'the connection closed after 408');
      });

      it('httpServer.close() closes idle keep-alive connections and lets an in-flight request finish', async () => {
        let release: (() => void) | null = null;
        const hs = http.createServer((req, res) => {
          if (req.url === '/hold') release = () => res.end('held');
          else res.end('quick');
        });
        const t = await startHandoff(driver, hs);
        const idle = await RawClient.connect(t.port);
        idle.socket.write('GET /quick HTTP/1.1\r\nHost: x\r\n\r\n');
        await idle.responses(1);
        const busy = await RawClient.connect(t.port);
        busy.socket.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
        await waitFor(() => release !== null, 5_000, 'the held request arrived');
        hs.close();
        await waitFor(() => idle.ended || idle.closed, 5_000, 'the idle connection closed');
        assert.equal(busy.ended || busy.closed, false, 'the busy connection stays');
        (release as unknown as () => void)();
        const [r] = await busy.responses(1);
        assert.equal(r.body.toString(), 'held');
      });

      it('server.close() of acceptpool ends every handed-off connection and the sockets close', async () => {
        const t = await startHandoff(
          driver,
          http.createServer((_req, res) => res.end('ok')),
        );
        const c = await RawClient.connect(t.port);
        c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await c.responses(1);
        let closed = false;
        t.sockets[0].on('close', () => {
          closed = true;
        });
        await withTimeout(t.server.close(), 10_000, 'server.close()');
        await waitFor(() => closed && (c.ended || c.closed), 5_000, 'socket and client closed');
      });

      it('the request sees the connection as on net.Socket: addresses, ports, counters', async () => {
        let info: Record<string, unknown> = {};
        const t = await startHandoff(
          driver,
          http.createServer((req, res) => {
            const s = req.socket;
            info = {
              remoteAddress: s.remoteAddress,
              remotePort: s.remotePort,
              remoteFamily: s.remoteFamily,
              localAddress: s.localAddress,
              localPort: s.localPort,
              address: s.address(),
              readyState: s.readyState,
              bytesRead: s.bytesRead > 0,
              connecting: s.connecting,
            };
            res.end('ok');
          }),
        );
        const c = await RawClient.connect(t.port);
        c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await c.responses(1);
        assert.deepEqual(info, {
          remoteAddress: HOST4,
          remotePort: c.socket.localPort,
          remoteFamily: 'IPv4',
          localAddress: HOST4,
          localPort: t.port,
          address: { address: HOST4, family: 'IPv4', port: t.port },
          readyState: 'open',
          bytesRead: true,
          connecting: false,
        });
        await waitFor(() => t.sockets[0].bytesWritten === c.bytes().length, 5_000, 'bytesWritten = bytes the client got');
      });
    });
  }
});
