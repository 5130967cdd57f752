import * as assert from 'node:assert/strict';
import * as http from 'node:http';

import { WebSocket, WebSocketServer } from 'ws';

import { DRIVERS, HOST4, cleanup, randomBytes, waitFor, withTimeout } from './helpers';
import { sha256, startHandoff } from './http-helpers';

describe('ws over handoff(http server): the upgrade and a WebSocket echo', function () {
  this.timeout(30_000);
  afterEach(cleanup);

  for (const driver of DRIVERS) {
    it(`${driver}: text and a 1 MiB binary message echoed in order, then a clean close (1000)`, async () => {
      const hs = http.createServer((_req, res) => res.end('not a websocket'));
      const wss = new WebSocketServer({ server: hs });
      let serverClose: number | null = null;
      wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        ws.on('close', (code) => {
          serverClose = code;
        });
      });
      const t = await startHandoff(driver, hs);
      const ws = new WebSocket(`ws://${HOST4}:${t.port}/chat`);
      await withTimeout(new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject)), 5_000, 'WebSocket open');
      const got: Array<{ binary: boolean; data: Buffer }> = [];
      ws.on('message', (data: Buffer, isBinary) => got.push({ binary: isBinary, data }));
      const big = randomBytes(1024 * 1024);
      for (let i = 0; i < 50; i++) ws.send(`message ${i}`);
      ws.send(big);
      ws.send('last');
      await waitFor(() => got.length === 52, 10_000, `52 echoes (have ${got.length})`);
      for (let i = 0; i < 50; i++)
        assert.deepEqual({ binary: got[i].binary, text: got[i].data.toString() }, { binary: false, text: `message ${i}` });
      assert.equal(got[50].binary, true);
      assert.equal(sha256(got[50].data), sha256(big));
      assert.equal(got[51].data.toString(), 'last');
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.close(1000, 'done');
      assert.equal(await withTimeout(closed, 5_000, 'client close'), 1000);
      await waitFor(() => serverClose === 1000, 5_000, 'the server saw the close');
      await t.h.waitCloses(1);
      assert.equal(t.sockets.length, 1);
      wss.close();
    });
  }
});
