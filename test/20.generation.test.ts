/**
 * The product's core promise: a session id names one connection for ever.
 * Once that connection has closed, commands through its id are refused,
 * counted, and never reach whoever occupies the slot next.
 */
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';

import { kSetGenerationForTesting } from '../src/endpoint';
import type { Session } from '../src/index';
import {
  DRIVERS,
  SETUPS,
  SLOT_MASK,
  assertThrowsCode,
  blockJsThread,
  cleanup,
  connect,
  connectMany,
  connectNoWait,
  delay,
  randomBytes,
  reader,
  startServer,
  waitFor,
} from './helpers';
import type { Harness, Reader } from './helpers';

const NONCE_BYTES = 24;

interface OldSession {
  id: number;
  nonce: Buffer;
}

/**
 * `n` clients connect, each sends its own random nonce and ends at once.
 * Resolves when the server has every nonce and every close.
 */
async function oldGeneration(h: Harness, n: number): Promise<OldSession[]> {
  const before = new Set(h.sessions.map((s) => s.id));
  const nonces = new Set<string>();
  const clients: net.Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    const wave = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => connect(h.port)));
    for (const c of wave) {
      const nonce = randomBytes(NONCE_BYTES);
      nonces.add(nonce.toString('hex'));
      c.end(nonce);
      clients.push(c);
    }
  }
  const mine = (): Session[] => h.sessions.filter((s) => !before.has(s.id));
  await waitFor(() => mine().length === n, 10_000, `${n} old sessions`);
  await waitFor(() => mine().every((s) => h.closeById.has(s.id)), 10_000, 'every old session to close');
  const out: OldSession[] = [];
  for (const s of mine()) {
    const nonce = h.receivedBytes(s.id);
    assert.equal(nonce.length, NONCE_BYTES, `session ${s.id} received ${nonce.length} bytes, not one nonce`);
    assert.ok(nonces.delete(nonce.toString('hex')), `session ${s.id} received a nonce no client sent, or one twice`);
    assert.equal(h.closeById.get(s.id)?.reason, 'remote');
    out.push({ id: s.id, nonce });
  }
  assert.equal(nonces.size, 0, 'some nonces never reached the server');
  return out;
}

interface NewClient {
  socket: net.Socket;
  reader: Reader;
}

/** Connects `n` silent clients and resolves with them and their sessions. */
async function newGeneration(h: Harness, n: number): Promise<{ clients: NewClient[]; sessions: Session[] }> {
  const before = new Set(h.sessions.map((s) => s.id));
  const sockets = await connectMany(h.port, n, undefined, 100);
  const clients = sockets.map((socket) => ({ socket, reader: reader(socket) }));
  await waitFor(() => h.sessions.filter((s) => !before.has(s.id)).length === n, 10_000, `${n} new sessions`);
  return { clients, sessions: h.sessions.filter((s) => !before.has(s.id)) };
}

/** Slots of `olds` that a new session took, with both ids. */
function reusedSlots(olds: readonly OldSession[], news: readonly Session[]): { slot: number; oldId: number; newId: number }[] {
  const oldBySlot = new Map<number, number>();
  for (const o of olds) oldBySlot.set(o.id & SLOT_MASK, o.id);
  const out: { slot: number; oldId: number; newId: number }[] = [];
  for (const s of news) {
    const oldId = oldBySlot.get(s.id & SLOT_MASK);
    if (oldId !== undefined) out.push({ slot: s.id & SLOT_MASK, oldId, newId: s.id });
  }
  return out;
}

/**
 * The new sessions still work and are routed right: each client receives
 * exactly a marker naming its own port, sent through its own session id.
 */
async function assertRoutedToOwner(h: Harness, clients: readonly NewClient[]): Promise<void> {
  for (const c of clients) {
    const s = h.byRemotePort(c.socket.localPort ?? -1);
    assert.ok(s !== undefined, `no session for client port ${String(c.socket.localPort)}`);
    assert.equal(h.server.send(s.id, `owner:${String(c.socket.localPort)};`), true);
  }
  await Promise.all(
    clients.map(async (c) => {
      const want = Buffer.from(`owner:${String(c.socket.localPort)};`);
      const got = await c.reader.readExactly(want.length);
      assert.ok(got.equals(want), `client ${String(c.socket.localPort)} got ${JSON.stringify(got.toString())}`);
    }),
  );
}

async function closeAll(h: Harness, clients: readonly NewClient[]): Promise<void> {
  const total = h.closes.length + clients.length;
  for (const c of clients) c.socket.end();
  await waitFor(() => h.closes.length >= total, 10_000, 'new sessions to close');
}

for (const { label, driver, options } of SETUPS) {
  describe(`generation promise (${label})`, function () {
    this.timeout(60_000);
    afterEach(cleanup);

    it('an occupant of a slot is reported closed before the next occupant of that slot appears', async () => {
      const h = await startServer(driver, { ...options, poolSize: 64, poolGrowth: 64 });
      const violations: string[] = [];
      h.server.on('session', (s) => {
        for (const other of h.open.values()) {
          if (other !== s && (other.id & SLOT_MASK) === (s.id & SLOT_MASK)) {
            violations.push(`new ${s.id} while ${other.id} (same slot) still open`);
          }
        }
      });
      // A client that resets before its accept completes never becomes a
      // session under Wine (its AcceptEx fails); it is counted in acceptAborts.
      const gone = (): number => h.closes.length + h.server.stats().acceptAborts;
      for (let round = 0; round < 5; round++) {
        const clients = await connectMany(h.port, 60);
        for (const c of clients) c.resetAndDestroy();
        // Some slot is free before the next round connects (where closing
        // takes a completion round trip, as with IOCP, it might not be yet).
        await waitFor(() => gone() > round * 60, 10_000, `a close in round ${round}`);
      }
      const settled = (): boolean => gone() === 300;
      await waitFor(settled, 10_000, 'all 300 sessions closed (or refused by a failed accept)');
      assert.equal(h.closes.length, h.sessions.length, 'a session was never closed');
      assert.deepEqual(violations, []);
      const slots = new Set(h.sessions.map((s) => s.id & SLOT_MASK));
      assert.ok(slots.size < h.sessions.length, 'slots were never reused, so the order was not exercised');
      assert.equal(new Set(h.sessions.map((s) => s.id)).size, h.sessions.length, 'an id was handed out twice');
    });

    it('send/closeSession to old ids whose slots were reused return false, are counted exactly, and no new client receives a byte', async () => {
      const h = await startServer(driver, { ...options, poolSize: 512 });
      const ROUNDS = 3;
      const N = 300;
      for (let round = 0; round < ROUNDS; round++) {
        const olds = await oldGeneration(h, N);
        const { clients, sessions } = await newGeneration(h, N);

        const reused = reusedSlots(olds, sessions);
        assert.ok(reused.length > 0, `round ${round}: no slot was reused; the test proves nothing`);
        for (const r of reused) assert.notEqual(r.newId, r.oldId, `slot ${r.slot} reused with the same id`);

        await delay(100);
        const staleBefore = h.server.stats().staleCommands;
        for (const o of olds) {
          assert.equal(h.server.send(o.id, o.nonce), false, `send to old id ${o.id} was not refused`);
          assert.equal(h.server.closeSession(o.id), false, `closeSession of old id ${o.id} was not refused`);
        }
        assert.equal(h.server.stats().staleCommands - staleBefore, 2 * N, 'staleCommands must count exactly the refused calls');

        await delay(300);
        for (const c of clients) {
          assert.equal(c.reader.length, 0, `round ${round}: a new client received ${c.reader.length} bytes meant for an old id`);
          assert.equal(c.reader.ended, false, 'a new client was ended by a command to an old id');
        }
        assert.equal(h.server.stats().staleCommands - staleBefore, 2 * N, 'staleCommands changed after the calls');
        assert.equal(h.open.size, N, 'a new session was closed by a command to an old id');

        await assertRoutedToOwner(h, clients);
        await closeAll(h, clients);
      }
    });

    it("a send to the old id of a slot, made in the session handler of the slot's new occupant, is refused", async () => {
      const h = await startServer(driver, { ...options, poolSize: 256 });
      const N = 150;
      const olds = await oldGeneration(h, N);
      const oldBySlot = new Map(olds.map((o) => [o.id & SLOT_MASK, o]));
      const results: { oldId: number; newId: number; send: boolean; close: boolean }[] = [];
      const staleBefore = h.server.stats().staleCommands;
      h.server.on('session', (s) => {
        const old = oldBySlot.get(s.id & SLOT_MASK);
        if (old === undefined || old.id === s.id) return;
        results.push({
          oldId: old.id,
          newId: s.id,
          send: h.server.send(old.id, old.nonce),
          close: h.server.closeSession(old.id),
        });
      });
      const { clients } = await newGeneration(h, N);
      assert.ok(results.length > 0, 'no new session reused an old slot');
      for (const r of results) {
        assert.equal(r.send, false, `send(${r.oldId}) in the session handler of ${r.newId} was accepted`);
        assert.equal(r.close, false, `closeSession(${r.oldId}) in the session handler of ${r.newId} was accepted`);
      }
      assert.equal(h.server.stats().staleCommands - staleBefore, 2 * results.length);
      await delay(300);
      for (const c of clients) assert.equal(c.reader.length, 0, 'a new client received bytes sent to an old id');
      assert.equal(h.open.size, N, 'a new session was closed by a command to an old id');
      await assertRoutedToOwner(h, clients);
    });

    it('commands issued before JS has heard of a close (slot already reused natively) never reach the new occupant', async () => {
      // Old clients reset; with the JS thread blocked, the threaded driver's
      // I/O thread closes their sessions and gives the slots to new clients
      // while JS still believes the old sessions open. Then JS sends to the
      // old ids. (The inline driver does no I/O while JS is blocked, so for it
      // the commands reach the old, reset sessions: still nothing may reach a
      // new client.)
      const h = await startServer(driver, { ...options, poolSize: 256 });
      const N = 60;
      const oldClients = await connectMany(h.port, N, undefined, 60);
      const nonces = oldClients.map(() => randomBytes(NONCE_BYTES));
      oldClients.forEach((c, i) => c.write(nonces[i]));
      await waitFor(
        () => h.sessions.length === N && h.sessions.every((s) => h.receivedBytes(s.id).length === NONCE_BYTES),
        10_000,
        'old nonces',
      );
      const olds: OldSession[] = h.sessions.map((s) => ({ id: s.id, nonce: h.receivedBytes(s.id) }));

      for (const c of oldClients) c.resetAndDestroy();
      blockJsThread(150);
      const newSockets = Array.from({ length: N }, () => connectNoWait(h.port));
      const newReaders = newSockets.map((socket) => ({ socket, reader: reader(socket) }));
      // net.connect() makes its connect(2) call in a nextTick; let it run
      // without returning to the event loop.
      await new Promise<void>((resolve) => process.nextTick(resolve));
      blockJsThread(300);
      const staleBefore = h.server.stats().staleCommands;
      let issued = 0;
      let refused = 0;
      for (const o of olds) {
        issued += 2;
        if (!h.server.send(o.id, o.nonce)) refused++;
        if (!h.server.closeSession(o.id)) refused++;
      }

      await waitFor(() => olds.every((o) => h.closeById.has(o.id)), 10_000, 'old sessions closed');
      await waitFor(() => h.sessions.length === 2 * N, 10_000, 'new sessions');
      await waitFor(() => newSockets.every((s) => s.localPort !== undefined), 5_000, 'new clients connected');
      const news = h.sessions.slice(N);
      const reused = reusedSlots(olds, news);
      for (const r of reused) assert.notEqual(r.newId, r.oldId);
      // Per old id: either the send met an already-closed session (stale),
      // or it met the reset socket, failed, closed it, and the closeSession
      // after it was stale. So at least one stale command per old id.
      const staleDelta = (): number => h.server.stats().staleCommands - staleBefore;
      await waitFor(() => staleDelta() >= N, 5_000, `staleCommands +${N} or more (have +${staleDelta()})`);
      assert.ok(staleDelta() <= issued, `staleCommands +${staleDelta()} exceeds the ${issued} commands issued`);
      assert.ok(refused <= issued);
      if (driver === 'threaded') {
        // The race was exercised: the I/O thread had closed some old session
        // before its command arrived, and handed its slot to a new client.
        assert.ok(staleDelta() > N, 'no command met a natively closed session; the race was not exercised');
        assert.ok(reused.length > 0, 'no slot was reused; the race was not exercised');
      }
      for (const o of olds) assert.equal(h.closeById.get(o.id)?.reason, 'reset');
      await delay(300);
      for (const c of newReaders) {
        assert.equal(c.reader.length, 0, `a new client received ${c.reader.length} bytes sent to an old id`);
        assert.equal(c.reader.ended, false, 'a new client was ended by a command to an old id');
      }
      assert.equal(h.open.size, N);
      await assertRoutedToOwner(h, newReaders);
    });
  });
}

/** 2^29: generations run from 1 to GENERATION_LIMIT - 1 (native/core/session_table.h). */
const GENERATION_LIMIT = 2 ** 29;
const SLOT_SPAN = 2 ** 24;

for (const driver of DRIVERS) {
  describe(`slot retirement (${driver} driver)`, function () {
    this.timeout(30_000);
    afterEach(cleanup);

    it('a slot that has used its last generation is retired: never reused, its old ids refused, new sessions served by other slots', async () => {
      const h = await startServer(
        driver,
        { poolSize: 4, poolGrowth: 4 },
        { beforeListen: (server) => server[kSetGenerationForTesting](0, GENERATION_LIMIT - 2) },
      );
      const echo = async (id: number, socket: net.Socket, text: string): Promise<void> => {
        const r = reader(socket);
        assert.equal(h.server.send(id, text), true);
        assert.equal((await r.readExactly(text.length)).toString(), text);
      };
      // The last two generations of slot 0, the last one the largest id there is.
      const ids: number[] = [];
      for (const generation of [GENERATION_LIMIT - 2, GENERATION_LIMIT - 1]) {
        const socket = await connect(h.port);
        await h.waitSessions(ids.length + 1);
        const s = h.sessions[ids.length];
        assert.equal(s.id, generation * SLOT_SPAN, `slot 0, generation ${generation}`);
        assert.ok(Number.isSafeInteger(s.id));
        await echo(s.id, socket, `generation ${generation}`);
        ids.push(s.id);
        socket.end();
        await h.waitClose(s.id);
      }
      await waitFor(() => h.server.stats().retiredSlots === 1, 5_000, 'stats().retiredSlots to be 1');
      // Everything after comes from other slots, and works.
      const sockets = await connectMany(h.port, 6);
      await h.waitSessions(2 + sockets.length);
      const news = h.sessions.slice(2);
      for (const s of news) assert.notEqual(s.id & SLOT_MASK, 0, `session ${s.id} took the retired slot 0`);
      const staleBefore = h.server.stats().staleCommands;
      for (const id of ids) {
        assert.equal(h.server.send(id, 'to a retired slot'), false);
        assert.equal(h.server.closeSession(id), false);
      }
      assert.equal(h.server.stats().staleCommands, staleBefore + 2 * ids.length);
      for (const c of sockets) {
        const s = h.byRemotePort(c.localPort ?? -1);
        assert.ok(s !== undefined);
        await echo(s.id, c, `own ${s.id}`);
      }
      await waitFor(() => h.server.stats().inUse === news.length, 5_000, 'inUse to count the new sessions');
      const st = h.server.stats();
      assert.equal(st.retiredSlots, 1);
      // Retired slots hold no session and are not in poolSize: the pool grew past it.
      assert.equal(st.poolSize, st.poolFree + st.inUse);
      assert.ok(st.poolSize >= news.length);
    });

    it('refuses the hook once the server listens (the table belongs to the I/O side then)', async () => {
      const h = await startServer(driver);
      assertThrowsCode(() => h.server[kSetGenerationForTesting](5, 7), 'ERR_ACCEPTPOOL_INVALID_STATE', 'hook after listen');
    });
  });
}
