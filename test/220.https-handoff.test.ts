import * as assert from 'node:assert/strict';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';

import { createClient } from '../src/index';
import { DRIVERS, HOST4, cleanup, randomBytes, withTimeout } from './helpers';
import { haveOpenssl, request, sha256, startHandoff, testCertificates } from './http-helpers';

const MiB = 1024 * 1024;

describe('TLS on sessions: https over handoff(), tls.connect({ socket }) on a client session', function () {
  this.timeout(60_000);
  afterEach(cleanup);
  const big = randomBytes(16 * MiB);
  before(function () {
    // The certificates come from the system's openssl, which Wine's
    // node.exe (npm run test:win) has not.
    if (!haveOpenssl()) this.skip();
  });

  for (const driver of DRIVERS) {
    describe(driver, () => {
      it('https: 16 MiB bodies each way, four times on one kept-alive connection, verified by a client that trusts the test CA', async () => {
        const { key, cert, ca } = testCertificates();
        const t = await startHandoff(
          driver,
          https.createServer({ key, cert }, (req, res) => {
            const encrypted = String((req.socket as tls.TLSSocket).encrypted === true);
            if (req.url === '/down') {
              res.setHeader('X-Encrypted', encrypted);
              res.end(big);
              return;
            }
            let length = 0;
            const parts: Buffer[] = [];
            req.on('data', (c: Buffer) => {
              length += c.length;
              parts.push(c);
            });
            req.on('end', () => res.end(JSON.stringify({ length, sha256: sha256(Buffer.concat(parts)), encrypted })));
          }),
        );
        // One kept-alive connection for every exchange: a request that
        // follows a 16 MiB response on it once met HPE_PAUSED (see
        // SessionSocket's sendPending).
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          for (let i = 0; i < 4; i++) {
            const down = await request(https, t.port, { path: '/down', ca, servername: 'localhost', agent });
            assert.equal(down.status, 200);
            assert.equal(down.headers['x-encrypted'], 'true');
            assert.equal(down.body.length, big.length);
            assert.equal(sha256(down.body), sha256(big));
            const up = await request(https, t.port, { method: 'POST', path: '/up', ca, servername: 'localhost', agent }, (req) =>
              req.end(big),
            );
            assert.deepEqual(JSON.parse(up.body.toString()), { length: big.length, sha256: sha256(big), encrypted: 'true' });
          }
        } finally {
          agent.destroy();
        }
        assert.equal(t.sockets.length, 1, 'one connection for all of it');
      });

      it('https: a client without the CA refuses the certificate', async () => {
        const { key, cert } = testCertificates();
        const t = await startHandoff(
          driver,
          https.createServer({ key, cert }, (_req, res) => res.end('secret')),
        );
        const err = await request(https, t.port, { path: '/', agent: false }).then(
          () => null,
          (e: unknown) => e as NodeJS.ErrnoException,
        );
        assert.ok(err !== null, 'the request failed');
        assert.match(String(err.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/);
      });

      it('tls.connect({ socket }) over a client session: verified handshake, 1 MiB echoed, clean end', async () => {
        const { key, cert, ca } = testCertificates();
        const echo = tls.createServer({ key, cert }, (s) => s.pipe(s));
        await new Promise<void>((resolve) => echo.listen(0, HOST4, resolve));
        const client = createClient({ driver });
        try {
          const session = await client.connect((echo.address() as AddressInfo).port, HOST4);
          const secure = tls.connect({ socket: session.toSocket(), ca, servername: 'localhost' });
          await withTimeout(
            new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject)),
            10_000,
            'TLS handshake',
          );
          assert.equal(secure.authorized, true);
          const sent = randomBytes(MiB);
          const got: Buffer[] = [];
          let length = 0;
          const ended = new Promise<void>((resolve) => secure.on('end', resolve));
          secure.on('data', (c: Buffer) => {
            got.push(c);
            length += c.length;
            if (length === sent.length) secure.end();
          });
          secure.write(sent);
          await withTimeout(ended, 20_000, 'the echo and the end');
          assert.equal(sha256(Buffer.concat(got)), sha256(sent));
        } finally {
          await client.close();
          await new Promise<void>((resolve) => echo.close(() => resolve()));
        }
      });
    });
  }
});
