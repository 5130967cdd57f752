import * as assert from 'node:assert/strict';
import * as net from 'node:net';

import { DRIVERS, HOST4, cleanup, delay, reader, startServer, waitFor } from './helpers';

/** A client that may half-close (allowHalfOpen) and keep reading. */
function halfOpenClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: HOST4, allowHalfOpen: true });
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });
}

for (const driver of DRIVERS) {
  describe(`half-close (${driver} driver)`, function () {
    this.timeout(20_000);
    let sockets: net.Socket[] = [];
    afterEach(async () => {
      for (const s of sockets) s.destroy();
      sockets = [];
      await cleanup();
    });

    it("without allowHalfOpen: data then FIN from the client gives 'data', 'end', and the reply arrives before the server's FIN", async () => {
      const h = await startServer(driver);
      const order: string[] = [];
      h.server.on('data', (s, chunk) => {
        order.push('data');
        s.send(Buffer.concat([Buffer.from('reply:'), chunk]));
      });
      h.server.on('end', () => order.push('end'));
      h.server.on('sessionClose', (_s, reason) => order.push(`close:${reason}`));
      const client = await halfOpenClient(h.port);
      sockets.push(client);
      const r = reader(client);
      client.end('request');
      await r.waitEnd();
      assert.equal(r.text(), 'reply:request');
      assert.equal(r.lengthAtEnd, 'reply:request'.length, 'the FIN overtook the reply');
      await h.waitCloses(1);
      assert.deepEqual(order, ['data', 'end', 'close:remote']);
    });

    it("without allowHalfOpen: a reply sent from the 'end' handler still arrives before the server's FIN", async () => {
      const h = await startServer(driver);
      h.server.on('end', (s) => {
        s.send(Buffer.concat([Buffer.from('late:'), h.receivedBytes(s.id)]));
      });
      const client = await halfOpenClient(h.port);
      sockets.push(client);
      const r = reader(client);
      client.end('q');
      await r.waitEnd();
      assert.equal(r.text(), 'late:q');
      assert.equal((await h.waitClose(h.sessions[0].id)).reason, 'remote');
    });

    it("with allowHalfOpen: the session stays open after 'end', can send, and session.end() finishes it", async () => {
      const h = await startServer(driver, { allowHalfOpen: true });
      const ends: number[] = [];
      h.server.on('end', (s) => ends.push(s.id));
      const client = await halfOpenClient(h.port);
      sockets.push(client);
      const r = reader(client);
      client.end('question');
      await waitFor(() => ends.length === 1, 5_000, "'end' event");
      const s = h.sessions[0];
      assert.equal(h.receivedBytes(s.id).toString(), 'question');
      await delay(200);
      assert.equal(s.closed, false, 'the session closed although allowHalfOpen is set');
      assert.equal(r.ended, false, 'the server sent FIN although allowHalfOpen is set');
      assert.equal(s.send('answer 1;'), true);
      assert.equal(s.send('answer 2;'), true);
      assert.equal(s.end(), true);
      await r.waitEnd();
      assert.equal(r.text(), 'answer 1;answer 2;');
      const rec = await h.waitClose(s.id);
      assert.ok(rec.reason === 'remote' || rec.reason === 'local', `reason ${rec.reason}`);
      assert.equal(rec.err, undefined);
      assert.equal(r.error, undefined);
    });

    it('session.end() half-closes: the client sees end and can still send bytes the server receives', async () => {
      const h = await startServer(driver);
      const client = await halfOpenClient(h.port);
      sockets.push(client);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      s.send('bye');
      assert.equal(s.end(), true);
      await r.waitEnd();
      assert.equal(r.text(), 'bye');
      client.write('after your FIN');
      await waitFor(() => h.receivedBytes(s.id).toString() === 'after your FIN', 5_000, 'bytes after the server half-closed');
      assert.equal(s.closed, false);
      client.end();
      const rec = await h.waitClose(s.id);
      assert.equal(rec.reason, 'local', 'we sent the first FIN');
      await r.waitClose();
      assert.equal(r.error, undefined);
    });

    it("after session.end(), the peer's FIN gives onend and 'end', then onclose and 'sessionClose' with reason 'local'", async () => {
      const h = await startServer(driver);
      const order: string[] = [];
      h.server.on('end', () => order.push('end'));
      h.server.on('sessionClose', (_s, reason, err) => order.push(`sessionClose:${reason}:${err?.message ?? ''}`));
      const client = await halfOpenClient(h.port);
      sockets.push(client);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      s.onend = () => order.push('onend');
      s.onclose = (reason) => order.push(`onclose:${reason}`);
      assert.equal(s.end(), true);
      await r.waitEnd();
      client.end('last');
      await h.waitClose(s.id);
      assert.deepEqual(order, ['onend', 'end', 'onclose:local', 'sessionClose:local:']);
      assert.equal(h.receivedBytes(s.id).toString(), 'last');
    });

    it('send() after session.end() returns false and its bytes never arrive', async () => {
      const h = await startServer(driver);
      const client = await halfOpenClient(h.port);
      sockets.push(client);
      const r = reader(client);
      await h.waitSessions(1);
      const s = h.sessions[0];
      assert.equal(s.send('bye'), true);
      assert.equal(s.end(), true);
      const late = s.send('too late');
      await r.waitEnd();
      await delay(100);
      assert.equal(r.text(), 'bye', 'bytes sent after end() reached the client');
      assert.equal(late, false, 'send() after end() reported success although its bytes were dropped');
    });
  });
}
