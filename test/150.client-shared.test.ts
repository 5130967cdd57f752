/**
 * The top-level connect(): one shared client, which keeps the process alive
 * only while it has sessions or connects in flight (like sockets do). Its
 * driver is the default one. Then createClient() clients of both drivers:
 * close() and unref() let the process go. The lifetime tests run in child
 * processes that nothing else keeps alive.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { DEFAULT_DRIVER, connect } from '../src/index';
import type { Session } from '../src/index';
import { DRIVERS, delay, fixturePath, waitFor, withTimeout } from './helpers';
import { cleanupAll, havePython, refusedPort, startBlackhole, startNetServer, trackChild } from './client-helpers';

interface Run {
  exited: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  lines(): string[];
}

function run(port: number, mode: string, timeoutMs?: number): Run {
  const args = [String(port), mode];
  if (timeoutMs !== undefined) args.push(String(timeoutMs));
  return runFixture('shared-connect', args);
}

function runFixture(name: string, fixtureArgs: readonly string[]): Run {
  const args = [fixturePath(name), ...fixtureArgs];
  const proc = trackChild(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const r: Run = {
    exited: false,
    code: null,
    signal: null,
    stdout: '',
    stderr: '',
    lines: () => r.stdout.split('\n').filter((l) => l.length > 0),
  };
  proc.stdout?.on('data', (d: Buffer) => {
    r.stdout += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    r.stderr += d.toString();
  });
  proc.on('exit', (code, signal) => {
    r.exited = true;
    r.code = code;
    r.signal = signal;
  });
  return r;
}

/** The child exits by itself within `ms`, with code 0. */
async function assertExitsAlone(r: Run, ms: number, what: string): Promise<void> {
  await waitFor(() => r.exited, ms, `the child to exit by itself ${what} (stdout ${JSON.stringify(r.stdout)})`);
  assert.equal(r.signal, null, `the child died of ${String(r.signal)}: ${r.stderr}`);
  assert.equal(r.code, 0, `the child exited with code ${String(r.code)}: ${r.stderr}`);
}

describe(`top-level connect() (shared client, ${DEFAULT_DRIVER} driver)`, function () {
  this.timeout(20_000);
  afterEach(cleanupAll);

  it('resolves a Session that sends and receives through its own ondata handler', async () => {
    const peer = await startNetServer();
    const s: Session = await withTimeout(connect(peer.port, '127.0.0.1'), 5_000, 'top-level connect');
    assert.equal(s.remotePort, peer.port);
    let got = '';
    let reason = '';
    s.ondata = (chunk) => {
      got += chunk.toString();
    };
    s.onclose = (r) => {
      reason = r;
    };
    assert.equal(s.send('shared client'), true);
    await waitFor(() => got.length >= 13, 5_000, 'the echo');
    assert.equal(got, 'shared client');
    assert.equal(s.close(), true);
    await waitFor(() => reason !== '', 5_000, 'the session to close');
    assert.equal(reason, 'local');
  });

  it('lets the process exit by itself once its session has closed (local close)', async () => {
    const peer = await startNetServer();
    const r = run(peer.port, 'echo-close');
    await assertExitsAlone(r, 5_000, 'after closing its session');
    assert.deepEqual(r.lines(), ['connected', 'echoed', 'closed local']);
  });

  it('lets the process exit by itself once the peer has closed its session', async () => {
    const peer = await startNetServer();
    peer.server.on('connection', (socket) => {
      setTimeout(() => socket.end(), 300);
    });
    const r = run(peer.port, 'remote-close');
    await assertExitsAlone(r, 5_000, 'after the peer closed its session');
    assert.deepEqual(r.lines(), ['connected', 'closed remote']);
  });

  it('keeps the process alive while a session is open', async () => {
    const peer = await startNetServer();
    const r = run(peer.port, 'hold');
    await waitFor(() => r.stdout.includes('connected') || r.exited, 10_000, 'the child to connect');
    await delay(1_000);
    assert.equal(r.exited, false, `the process exited (code ${String(r.code)}) with a session open: ${r.stdout}${r.stderr}`);
    // Closing the session from the far side lets it go.
    for (const socket of peer.sockets) socket.end();
    await assertExitsAlone(r, 5_000, 'after the peer ended the held session');
  });

  it("lets the process exit by itself while its session is open once the session's socket is unref()'d", async () => {
    const peer = await startNetServer();
    const r = run(peer.port, 'socket-unref');
    await assertExitsAlone(r, 5_000, "with an unref()'d socket open");
    assert.deepEqual(r.lines(), ['connected']);
  });

  it("keeps the process alive while the session's socket is ref()'d again, until the peer ends it", async () => {
    const peer = await startNetServer();
    const r = run(peer.port, 'socket-reref');
    await waitFor(() => r.stdout.includes('connected') || r.exited, 10_000, 'the child to connect');
    await delay(1_000);
    assert.equal(r.exited, false, `the process exited (code ${String(r.code)}) with a ref()'d socket open: ${r.stdout}${r.stderr}`);
    for (const socket of peer.sockets) socket.end();
    await assertExitsAlone(r, 5_000, 'after the peer ended the session');
    assert.deepEqual(r.lines(), ['connected', 'socket closed']);
  });

  it('lets the process exit by itself after a refused connect', async () => {
    const port = await refusedPort();
    const r = run(port, 'refused');
    await assertExitsAlone(r, 5_000, 'after a refused connect');
    assert.deepEqual(r.lines(), ['error ECONNREFUSED']);
  });

  it('lets the process exit by itself after a connect times out', async function () {
    if (!havePython()) this.skip();
    const bh = await startBlackhole();
    const r = run(bh.port, 'timeout', 300);
    await assertExitsAlone(r, 5_000, 'after a connect timed out');
    assert.deepEqual(r.lines(), ['error ETIMEDOUT']);
  });
});

for (const driver of DRIVERS) {
  describe(`createClient() process lifetime (${driver} driver)`, function () {
    this.timeout(20_000);
    afterEach(cleanupAll);

    it('lets the process exit by itself after client.close()', async () => {
      const peer = await startNetServer();
      const r = runFixture('client-child', [driver, String(peer.port), 'close']);
      await assertExitsAlone(r, 5_000, 'after client.close()');
      assert.deepEqual(r.lines(), ['connected', 'echoed', 'closed']);
    });

    it('keeps the process alive while the client is open', async () => {
      const peer = await startNetServer();
      const r = runFixture('client-child', [driver, String(peer.port), 'hold']);
      await waitFor(() => r.stdout.includes('connected') || r.exited, 10_000, 'the child to connect');
      await delay(1_000);
      assert.equal(r.exited, false, `the process exited (code ${String(r.code)}) with its client open: ${r.stdout}${r.stderr}`);
    });

    it('lets the process exit by itself after client.unref(), with a session still open', async () => {
      const peer = await startNetServer();
      const r = runFixture('client-child', [driver, String(peer.port), 'unref']);
      await assertExitsAlone(r, 5_000, 'after client.unref()');
      assert.deepEqual(r.lines(), ['connected', 'unref']);
    });

    it("connect() still resolves (and the session works) when a 'session' listener throws; the error surfaces as uncaughtException", async () => {
      const peer = await startNetServer();
      const r = runFixture('client-child', [driver, String(peer.port), 'throwing-session']);
      await assertExitsAlone(r, 10_000, 'after reporting');
      assert.deepEqual(r.lines(), ['uncaught boom in session handler', 'resolved and echoed', 'uncaught count 1']);
    });
  });
}
