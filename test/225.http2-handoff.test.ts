import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';

import { DRIVERS, HOST4, cleanup, randomBytes, withTimeout } from './helpers';
import { sha256, startHandoff } from './http-helpers';

function get(client: http2.ClientHttp2Session, path: string): Promise<Buffer> {
  return withTimeout(
    new Promise<Buffer>((resolve, reject) => {
      const req = client.request({ ':path': path });
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => resolve(Buffer.concat(parts)));
      req.on('error', reject);
      req.end();
    }),
    10_000,
    `h2 GET ${path}`,
  );
}

describe('http2 (cleartext) over handoff()', function () {
  this.timeout(30_000);
  afterEach(cleanup);
  const big = randomBytes(4 * 1024 * 1024);

  for (const driver of DRIVERS) {
    it(`${driver}: concurrent streams, a 4 MiB one among them, all on one session`, async () => {
      const h2 = http2.createServer();
      h2.on('stream', (stream, headers) => {
        stream.respond({ ':status': 200 });
        stream.end(headers[':path'] === '/big' ? big : `h2 ${String(headers[':path'])}`);
      });
      const t = await startHandoff(driver, h2);
      const client = http2.connect(`http://${HOST4}:${t.port}`);
      try {
        const [a, b, c] = await Promise.all([get(client, '/a'), get(client, '/big'), get(client, '/c')]);
        assert.equal(a.toString(), 'h2 /a');
        assert.equal(sha256(b), sha256(big));
        assert.equal(c.toString(), 'h2 /c');
        assert.equal(t.sockets.length, 1);
      } finally {
        client.close();
        h2.close();
      }
    });
  }
});
