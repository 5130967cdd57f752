/**
 * The generation promise on the client side: once a client session has
 * closed (whoever closed it), commands through its id are refused, counted,
 * and never reach the connection that took its slot next.
 */
import * as assert from 'node:assert/strict';

import type { Session } from '../src/index';
import { DRIVERS, SLOT_MASK, blockJsThread, delay, startServer, waitFor } from './helpers';
import type { Harness } from './helpers';
import { cleanupAll, connectOk, startClient } from './client-helpers';
import type { ClientHarness } from './client-helpers';

type Cause = 'the client closeSession()' | "the server's closeSession()" | "the server's destroy() (a reset)";
const CAUSES: readonly Cause[] = ['the client closeSession()', "the server's closeSession()", "the server's destroy() (a reset)"];

const N = 24;

/** Opens `n` client sessions and waits until the server has them all. */
async function openSessions(srv: Harness, h: ClientHarness, n: number): Promise<{ client: Session[]; server: Session[] }> {
  const before = srv.sessions.length;
  const client = await Promise.all(Array.from({ length: n }, () => connectOk(h, srv.port)));
  await srv.waitSessions(before + n);
  return { client, server: srv.sessions.slice(before) };
}

/** Opens `n` sessions and closes them by `cause`; resolves once both sides saw every close. */
async function oldGeneration(srv: Harness, h: ClientHarness, n: number, cause: Cause): Promise<Session[]> {
  const { client, server } = await openSessions(srv, h, n);
  for (let i = 0; i < n; i++) {
    if (cause === 'the client closeSession()') assert.equal(h.client.closeSession(client[i].id), true);
    else if (cause === "the server's closeSession()") assert.equal(srv.server.closeSession(server[i].id), true);
    else assert.equal(server[i].destroy(), true);
  }
  await waitFor(() => client.every((s) => h.closeById.has(s.id)), 10_000, 'every old client session to close');
  await waitFor(() => server.every((s) => srv.closeById.has(s.id)), 10_000, 'every old server session to close');
  const expected = cause === 'the client closeSession()' ? 'local' : cause === "the server's closeSession()" ? 'remote' : 'reset';
  for (const s of client) assert.equal(h.closeById.get(s.id)?.reason, expected, `old session ${s.id} closed for another reason`);
  return client;
}

/** Pairs of (old id, new id) that share a slot. */
function reusedSlots(olds: readonly Session[], news: readonly Session[]): { oldId: number; newId: number }[] {
  const oldBySlot = new Map(olds.map((s) => [s.id & SLOT_MASK, s.id]));
  const out: { oldId: number; newId: number }[] = [];
  for (const s of news) {
    const oldId = oldBySlot.get(s.id & SLOT_MASK);
    if (oldId !== undefined) out.push({ oldId, newId: s.id });
  }
  return out;
}

/** Each new client session reaches exactly its own server session, and both stay open. */
async function assertNewSessionsIntact(srv: Harness, h: ClientHarness, news: { client: Session[]; server: Session[] }): Promise<void> {
  for (const s of news.client) assert.equal(h.client.send(s.id, `marker ${s.id};`), true, `send to live id ${s.id} refused`);
  const text = (s: Session): string => srv.receivedBytes(s.id).toString();
  await waitFor(() => news.server.every((s) => text(s).endsWith(';')), 5_000, 'every new server session to get its marker');
  const got = news.server.map(text).sort();
  const want = news.client.map((s) => `marker ${s.id};`).sort();
  assert.deepEqual(got, want, 'markers were lost, duplicated, or joined by bytes sent to old ids');
  assert.ok(
    news.client.every((s) => h.open.has(s.id)),
    'a new client session was closed',
  );
  assert.ok(
    news.server.every((s) => srv.open.has(s.id)),
    'a new server session was closed',
  );
}

for (const driver of DRIVERS) {
  describe(`client generation promise (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanupAll);

    for (const cause of CAUSES) {
      it(`after ${cause} closed them, old ids whose slots were reused are refused by send/closeSession, counted exactly, and never reach the new connections`, async () => {
        const srv = await startServer(driver);
        const h = startClient(driver, { poolSize: 32, poolGrowth: 32 });
        const olds = await oldGeneration(srv, h, N, cause);
        const news = await openSessions(srv, h, N);

        const reused = reusedSlots(olds, news.client);
        assert.ok(reused.length > 0, 'no slot was reused; the test proves nothing');
        for (const r of reused) assert.notEqual(r.newId, r.oldId, `slot ${r.newId & SLOT_MASK} reused with the same id`);

        const staleBefore = h.client.stats().staleCommands;
        for (const s of olds) {
          assert.equal(h.client.send(s.id, `stale bytes for ${s.id}`), false, `send to old id ${s.id} was not refused`);
          assert.equal(h.client.closeSession(s.id), false, `closeSession of old id ${s.id} was not refused`);
          assert.equal(s.send('stale via the Session object'), false, `Session.send() of old session ${s.id} was not refused`);
        }
        assert.equal(h.client.stats().staleCommands - staleBefore, 3 * N, 'staleCommands must count exactly the refused calls');

        await delay(200);
        for (const s of news.server)
          assert.equal(srv.receivedBytes(s.id).length, 0, `new server session ${s.id} received bytes sent to an old id`);
        assert.equal(h.client.stats().staleCommands - staleBefore, 3 * N, 'staleCommands changed after the calls');
        await assertNewSessionsIntact(srv, h, news);
      });
    }

    it("a send to the old id of a slot, made in the 'session' handler of the slot's new occupant, is refused", async () => {
      const srv = await startServer(driver);
      const h = startClient(driver, { poolSize: 32, poolGrowth: 32 });
      const olds = await oldGeneration(srv, h, N, 'the client closeSession()');
      const oldBySlot = new Map(olds.map((s) => [s.id & SLOT_MASK, s.id]));
      const results: { oldId: number; newId: number; send: boolean; close: boolean }[] = [];
      const staleBefore = h.client.stats().staleCommands;
      h.client.on('session', (s) => {
        const oldId = oldBySlot.get(s.id & SLOT_MASK);
        if (oldId === undefined || oldId === s.id) return;
        results.push({ oldId, newId: s.id, send: h.client.send(oldId, 'stale'), close: h.client.closeSession(oldId) });
      });
      const news = await openSessions(srv, h, N);
      assert.ok(results.length > 0, 'no new session reused an old slot');
      for (const r of results) {
        assert.equal(r.send, false, `send(${r.oldId}) in the session handler of ${r.newId} was accepted`);
        assert.equal(r.close, false, `closeSession(${r.oldId}) in the session handler of ${r.newId} was accepted`);
      }
      assert.equal(h.client.stats().staleCommands - staleBefore, 2 * results.length);
      await delay(200);
      for (const s of news.server) assert.equal(srv.receivedBytes(s.id).length, 0, 'a new server session received bytes sent to an old id');
      await assertNewSessionsIntact(srv, h, news);
    });

    it('commands to ids the client has not yet heard are closed (slots possibly reused natively) never reach the new connections', async () => {
      // The (threaded) server resets the old sessions; with the JS thread
      // blocked, a threaded client's I/O thread closes them, and the new
      // connects started then may take their slots, while JS still believes
      // the old sessions open. Then JS sends to the old ids. (An inline client does no I/O while JS is blocked, so
      // for it the commands meet the old, reset sessions: still nothing may
      // reach a new connection.)
      const srv = await startServer('threaded');
      const h = startClient(driver, { poolSize: 32, poolGrowth: 32 });
      const staleEvents: number[] = [];
      h.client.on('staleCommand', (id) => staleEvents.push(id));
      const old = await openSessions(srv, h, N);
      for (const s of old.server) assert.equal(s.destroy(), true);
      blockJsThread(150);
      // A numeric host: connect() reaches native code before it returns.
      const pending = Array.from({ length: N }, () => h.client.connect(srv.port, '127.0.0.1'));
      blockJsThread(300);
      const staleBefore = h.client.stats().staleCommands;
      for (const s of old.client) {
        h.client.send(s.id, `stale bytes for ${s.id}`);
        h.client.closeSession(s.id);
      }
      const newClient = await Promise.all(pending);
      await srv.waitSessions(2 * N);
      const news = { client: newClient, server: srv.sessions.slice(N) };
      await waitFor(() => old.client.every((s) => h.closeById.has(s.id)), 10_000, 'old client sessions closed');
      for (const s of old.client) assert.equal(h.closeById.get(s.id)?.reason, 'reset');
      for (const r of reusedSlots(old.client, newClient)) assert.notEqual(r.newId, r.oldId);
      if (driver === 'threaded') {
        // The race was exercised: commands met natively closed sessions.
        await waitFor(() => h.client.stats().staleCommands - staleBefore > 0, 5_000, 'a command to find its session gone natively');
        await waitFor(() => staleEvents.length > 0, 5_000, "a 'staleCommand' event");
        for (const id of staleEvents)
          assert.ok(
            old.client.some((s) => s.id === id),
            `'staleCommand' names ${id}, not an old id`,
          );
      }
      await delay(200);
      for (const s of news.server)
        assert.equal(srv.receivedBytes(s.id).length, 0, `new server session ${s.id} received bytes sent to an old id`);
      await assertNewSessionsIntact(srv, h, news);
    });
  });
}
