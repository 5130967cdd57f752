/**
 * EMFILE: a server out of descriptors must not spin, must count it, and must
 * keep its listener. Runs the server in a child process under a descriptor
 * limit of 64 (prlimit), so the mocha process keeps its own limit.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { binding } from '../src/native';

import { DRIVERS, cleanup, connect, connectNoWait, delay, reader, spawnFixture, waitFor, withTimeout } from './helpers';
import type { ChildServer } from './helpers';
import type { ReadyMessage, StatsMessage } from './fixtures/emfile-server';

const FD_LIMIT = 64;
const CLIENTS = 150;

async function stats(c: ChildServer): Promise<StatsMessage> {
  c.send({ type: 'stats' });
  return c.next<StatsMessage>('stats');
}

function cpuMicros(c: NodeJS.CpuUsage): number {
  return c.user + c.system;
}

// prlimit and descriptor limits are Linux's.
const describeLinux = process.platform === 'linux' ? describe : describe.skip;

describeLinux('descriptor limit (RLIMIT_NOFILE, as native code reads it)', () => {
  it("is this process's soft limit, as /proc/self/limits says", () => {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    assert.ok(line !== undefined);
    const soft = line.slice('Max open files'.length).trim().split(/\s+/)[0];
    assert.equal(binding.descriptorLimit(), soft === 'unlimited' ? null : Number(soft));
  });

  it('follows the limit a process is started under (prlimit)', () => {
    const native = path.join(__dirname, '..', 'src', 'native.js');
    const read = `console.log(require(${JSON.stringify(native)}).binding.descriptorLimit())`;
    const out = execFileSync('prlimit', [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, '-e', read], { encoding: 'utf8' });
    assert.equal(out.trim(), String(FD_LIMIT));
  });
});

for (const driver of DRIVERS) {
  describeLinux(`EMFILE (${driver} driver, child limited to ${FD_LIMIT} descriptors)`, function () {
    this.timeout(30_000);
    let child: ChildServer | null = null;

    beforeEach(() => {
      child = spawnFixture('emfile-server', [driver], { nofile: FD_LIMIT });
    });

    afterEach(async () => {
      await cleanup();
      if (child !== null) await child.close();
      child = null;
    });

    it('does not spin, counts emfile, and keeps accepting and echoing after descriptors free up', async () => {
      const c = child as ChildServer;
      const { port } = await c.next<ReadyMessage>('ready', 10_000);
      const clients = Array.from({ length: CLIENTS }, () => connectNoWait(port));
      await waitFor(() => clients.every((s) => s.localPort !== undefined || s.destroyed), 10_000, 'clients connected');
      let st = await stats(c);
      const deadline = Date.now() + 5_000;
      while (st.stats.emfile === 0 && Date.now() < deadline) {
        await delay(50);
        st = await stats(c);
      }
      assert.ok(st.stats.emfile > 0, `no EMFILE counted (accepts ${st.stats.accepts}, acceptErrors ${st.stats.acceptErrors})`);
      assert.ok(st.stats.accepts < CLIENTS, 'the child accepted every client: the limit was not reached');

      // Hold the connections for 2 s and measure the child's CPU time.
      const t0 = process.hrtime.bigint();
      const before = await stats(c);
      await delay(2_000);
      const after = await stats(c);
      const wallMicros = Number(process.hrtime.bigint() - t0) / 1000;
      const share = (cpuMicros(after.cpu) - cpuMicros(before.cpu)) / wallMicros;
      assert.ok(share < 0.3, `the child used ${(share * 100).toFixed(1)}% of a core while out of descriptors (spinning)`);
      assert.ok(after.stats.emfile >= before.stats.emfile);

      // Free the descriptors: the listener must have survived.
      for (const s of clients) s.destroy();
      await waitFor(() => clients.every((s) => s.destroyed), 5_000, 'clients destroyed');
      const survivor = await withTimeout(
        (async () => {
          // The server may still be in its back-off; retry until one echoes.
          for (;;) {
            const s = await connect(port);
            const r = reader(s);
            s.write('still alive');
            try {
              await r.readExactly(11, 1_500);
              return r.bytes().toString();
            } catch {
              s.destroy();
            }
          }
        })(),
        10_000,
        'an echo after the descriptors were freed',
      );
      assert.equal(survivor, 'still alive');
      const end = await stats(c);
      assert.ok(end.stats.accepts > st.stats.accepts, 'no accept after the descriptors were freed');
    });
  });
}
