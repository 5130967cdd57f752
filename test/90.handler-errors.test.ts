/**
 * A handler that throws must not break the server: the error surfaces as an
 * uncaught exception, and later events keep arriving. Run in a child process
 * so the exception does not fail the mocha run itself.
 */
import * as assert from 'node:assert/strict';

import { DRIVERS, cleanup, connect, delay, reader, spawnFixture, waitFor } from './helpers';
import type { ChildServer } from './helpers';
import type { ReadyMessage, UncaughtMessage } from './fixtures/throwing-server';

for (const driver of DRIVERS) {
  describe(`throwing handlers (${driver} driver)`, function () {
    this.timeout(20_000);
    let child: ChildServer | null = null;
    afterEach(async () => {
      await cleanup();
      if (child !== null) await child.close();
      child = null;
    });

    it("an exception thrown in a 'data' handler surfaces as uncaughtException, and the session and server keep working", async () => {
      const c = (child = spawnFixture('throwing-server', [driver]));
      const { port } = await c.next<ReadyMessage>('ready', 10_000);
      const a = await connect(port);
      const ra = reader(a);
      a.write('throw please');
      const u = await c.next<UncaughtMessage>('uncaught');
      assert.equal(u.message, 'boom in data handler: throw please');
      // The same session still works.
      a.write('echo me');
      assert.equal((await ra.readExactly(7)).toString(), 'echo me');
      // And a new one.
      const b = await connect(port);
      const rb = reader(b);
      b.write('new one');
      assert.equal((await rb.readExactly(7)).toString(), 'new one');
      assert.equal(c.exited, false, 'the child died');
      assert.equal(c.all<UncaughtMessage>('uncaught').length, 0, 'more than one uncaught exception');
    });

    it("an exception thrown in every 'session' handler surfaces once per session, and those sessions still get their data events", async () => {
      const c = (child = spawnFixture('throwing-server', [driver], { env: { THROW_ON_SESSION: '1' } }));
      const { port } = await c.next<ReadyMessage>('ready', 10_000);
      const clients = await Promise.all([connect(port), connect(port), connect(port)]);
      const readers = clients.map((s) => reader(s));
      clients.forEach((s, i) => s.write(`hello ${i}`));
      const got = await Promise.all(readers.map((r) => r.readExactly(7)));
      got.forEach((g, i) => assert.equal(g.toString(), `hello ${i}`));
      await waitFor(() => c.all<UncaughtMessage>('uncaught').length === 3, 5_000, '3 uncaught exceptions');
      await delay(100);
      const msgs = c.all<UncaughtMessage>('uncaught');
      assert.equal(msgs.length, 3);
      for (const m of msgs) assert.match(m.message, /^boom in session handler of \d+$/);
      assert.equal(c.exited, false);
    });
  });
}
