/**
 * Listeners beyond TCP ports: a Unix domain socket (listen({ path })), a
 * listening descriptor inherited from a parent (listen({ fd })), and systemd
 * socket activation (LISTEN_FDS / LISTEN_PID, systemdListeners()).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { createServer, systemdListeners } from '../src/index';
import type { AddressInfo } from '../src/index';
import { ChildServer, DRIVERS, HOST4, assertRejectsCode, cleanup, fixturePath, reader, track, waitFor } from './helpers';

const LINUX = process.platform === 'linux';

function tmpSocketPath(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-unix-'));
  return path.join(dir, 'server.sock');
}

/** A TCP listener made here, its descriptor to hand to a child. */
async function parentListener(): Promise<{ server: net.Server; fd: number; port: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST4, resolve));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  return { server, fd, port: (server.address() as net.AddressInfo).port };
}

/** The fixture with `fd` as its descriptor 3 (and IPC on 4), optionally through sh for LISTEN_PID=$$. */
function spawnWithListener(fd: number, args: string[], env: NodeJS.ProcessEnv = {}, viaShell = false): ChildServer {
  const stdio: ('ignore' | 'inherit' | 'pipe' | 'ipc' | number)[] = ['ignore', 'inherit', 'pipe', fd, 'ipc'];
  const script = fixturePath('inherited-listener');
  const fullEnv = { ...process.env, ...env };
  const proc = viaShell
    ? // systemd sets LISTEN_PID to the service's pid: exec keeps the shell's.
      spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, script, ...args], { stdio, env: fullEnv })
    : spawn(process.execPath, [script, ...args], { stdio, env: fullEnv });
  return new ChildServer(proc);
}

async function ask(port: number, text: string): Promise<string> {
  const c = net.connect(port, HOST4);
  const r = reader(c);
  c.write(text);
  await waitFor(() => r.text().endsWith(text), 10_000, `the answer to ${text}`);
  c.destroy();
  return r.text();
}

describe('listeners beyond TCP ports', function () {
  this.timeout(30_000);
  afterEach(cleanup);

  if (!LINUX) {
    it('listen({ path }) and listen({ fd }) refuse with ERR_ACCEPTPOOL_UNSUPPORTED where the backend has neither', async () => {
      const server = track(createServer());
      await assertRejectsCode(server.listen({ path: 'x.sock' }), 'ERR_ACCEPTPOOL_UNSUPPORTED', 'path');
      await assertRejectsCode(server.listen({ fd: 3 }), 'ERR_ACCEPTPOOL_UNSUPPORTED', 'fd');
    });
    return;
  }

  for (const driver of DRIVERS) {
    it(`a Unix domain socket (${driver} driver): served to net.connect({ path }), and removed on close`, async () => {
      const file = tmpSocketPath();
      const server = track(createServer({ driver }));
      const sessions: string[] = [];
      server.on('session', (s) => sessions.push(`${s.remoteFamily}|${s.remoteAddress}|${s.remotePort}`));
      server.on('data', (s, chunk) => s.send(chunk));
      const address = await server.listen({ path: file });
      assert.deepEqual(address, { address: file, family: 'unix', port: 0 } satisfies AddressInfo);
      assert.deepEqual(server.address(), address);
      assert.ok(fs.statSync(file).isSocket());
      const c = net.connect({ path: file });
      const r = reader(c);
      c.write('over a unix socket');
      assert.equal((await r.readExactly(18)).toString(), 'over a unix socket');
      assert.deepEqual(sessions, ['unix||0']);
      // The path is taken while it listens.
      await assertRejectsCode(track(createServer({ driver })).listen({ path: file }), 'EADDRINUSE', 'a second listener on the path');
      c.destroy();
      await server.close();
      assert.equal(fs.existsSync(file), false, 'the socket file is removed on close');
    });
  }

  it('listen({ path }) refuses an empty or too long path', async () => {
    const server = track(createServer());
    await assertRejectsCode(server.listen({ path: '' }), 'ERR_ACCEPTPOOL_INVALID_ARG', 'empty');
    await assertRejectsCode(server.listen({ path: `/tmp/${'x'.repeat(120)}` }), 'ERR_ACCEPTPOOL_INVALID_ARG', 'too long');
    await assertRejectsCode(server.listen({ path: 'a', fd: 3 }), 'ERR_ACCEPTPOOL_INVALID_ARG', 'both');
  });

  for (const driver of DRIVERS) {
    it(`a listening socket made by the parent and inherited as descriptor 3 serves in the child (${driver} driver)`, async () => {
      const parent = await parentListener();
      const child = spawnWithListener(parent.fd, [driver, 'fd']);
      try {
        const ready = await child.next<{ type: 'ready'; address: AddressInfo }>('ready', 10_000);
        assert.deepEqual(ready.address, { address: HOST4, family: 'IPv4', port: parent.port });
        // Only the child accepts from here on.
        await new Promise<void>((resolve) => parent.server.close(() => resolve()));
        assert.equal(await ask(parent.port, 'inherited'), '127.0.0.1 inherited');
      } finally {
        parent.server.close();
        await child.close();
      }
    });
  }

  it('systemd socket activation: LISTEN_FDS / LISTEN_PID name the socket, and the variables are cleared', async () => {
    const parent = await parentListener();
    const child = spawnWithListener(parent.fd, ['threaded', 'systemd'], { LISTEN_FDS: '1', LISTEN_FDNAMES: 'web' }, true);
    try {
      const ready = await child.next<{ type: 'ready'; address: AddressInfo; names: string[]; envLeft: string | null }>('ready', 10_000);
      assert.equal(ready.address.port, parent.port);
      assert.deepEqual(ready.names, ['web']);
      assert.equal(ready.envLeft, null);
      await new Promise<void>((resolve) => parent.server.close(() => resolve()));
      assert.equal(await ask(parent.port, 'activated'), '127.0.0.1 activated');
    } finally {
      parent.server.close();
      await child.close();
    }
  });

  it('systemdListeners() takes only what was passed to this very process', () => {
    assert.deepEqual(systemdListeners({ LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '2' }), []);
    assert.deepEqual(systemdListeners({}), []);
    const env: NodeJS.ProcessEnv = { LISTEN_PID: String(process.pid), LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:admin' };
    assert.deepEqual(systemdListeners(env), [
      { fd: 3, name: 'web' },
      { fd: 4, name: 'admin' },
    ]);
    assert.deepEqual(env, {});
  });

  it('listen({ fd }) of something that is not a listening socket fails with the OS error', async () => {
    const file = fs.openSync(__filename, 'r');
    try {
      await assertRejectsCode(track(createServer()).listen({ fd: file }), 'ENOTSOCK', 'a regular file');
    } finally {
      fs.closeSync(file);
    }
    await assertRejectsCode(track(createServer()).listen({ fd: 1_000_000 }), 'EBADF', 'no such descriptor');
  });
});
