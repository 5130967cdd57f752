/**
 * The io_uring fallback under a real block: a server in a child process
 * whose seccomp filter makes io_uring_setup fail with EPERM (as Docker's and
 * Kubernetes' default profiles do; test/fixtures/deny-io-uring.c, compiled
 * here with cc). 'auto' must serve on epoll and say why it passed over
 * io_uring; a named 'io_uring' must fail with ERR_ACCEPTPOOL_UNSUPPORTED and
 * the reason. Linux only (io_uring is Linux's).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { backends } from '../src/index';

const ROOT = path.resolve(__dirname, '..', '..');
const SOURCE = path.join(ROOT, 'test', 'fixtures', 'deny-io-uring.c');
const INDEX = path.resolve(__dirname, '..', 'src', 'index.js');

/** What the child prints: the backend that served and why, or the error. */
interface Outcome {
  backend?: string;
  fallback?: string;
  echoed?: string;
  code?: string;
  message?: string;
}

/** Run in the child: a server on `backend` that echoes one message to a node:net client. */
function childScript(backend: string): string {
  return `
const net = require('node:net');
const { createServer } = require(${JSON.stringify(INDEX)});
(async () => {
  let server;
  try {
    server = createServer({ backend: ${JSON.stringify(backend)} });
  } catch (err) {
    console.log(JSON.stringify({ code: err.code, message: err.message }));
    return;
  }
  server.on('data', (s, chunk) => s.send(chunk));
  const { port } = await server.listen(0, '127.0.0.1');
  const echoed = await new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write('ping'));
    c.once('data', (d) => { resolve(d.toString()); c.destroy(); });
    c.once('error', reject);
  });
  const st = server.stats();
  await server.close();
  console.log(JSON.stringify({ backend: st.backend, fallback: st.backendFallback, echoed }));
})().catch((err) => { console.log(JSON.stringify({ code: 'CHILD', message: String(err) })); });
`;
}

describe('io_uring blocked by seccomp (a child process)', function () {
  this.timeout(60_000);
  let helper = '';

  before(function () {
    if (process.platform !== 'linux') this.skip(); // io_uring is Linux's; other platforms have no fallback to check
    assert.ok(backends().includes('io_uring'), 'this Linux build has no io_uring backend');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-seccomp-'));
    helper = path.join(dir, 'deny-io-uring');
    const cc = spawnSync('cc', ['-O2', '-o', helper, SOURCE], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
  });

  /** Runs the child script under the filter and returns what it printed. */
  function run(backend: string): Outcome {
    // ACCEPTPOOL_BACKEND unset: the option alone decides.
    const env = { ...process.env };
    delete env.ACCEPTPOOL_BACKEND;
    const r = spawnSync(helper, [process.execPath, '-e', childScript(backend)], { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(r.status, 0, `the child failed (${r.status}): ${r.stderr}`);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(line) as Outcome;
  }

  it("'auto' serves on epoll, and stats().backendFallback says io_uring_setup failed with EPERM", () => {
    const out = run('auto');
    assert.equal(out.code, undefined, out.message);
    assert.equal(out.backend, 'epoll');
    assert.equal(out.echoed, 'ping');
    assert.match(out.fallback ?? '', /^io_uring: io_uring_setup failed with EPERM/);
  });

  it("a named 'io_uring' never falls back: ERR_ACCEPTPOOL_UNSUPPORTED with the reason", () => {
    const out = run('io_uring');
    assert.equal(out.code, 'ERR_ACCEPTPOOL_UNSUPPORTED');
    assert.match(out.message ?? '', /backend 'io_uring' cannot run here: io_uring_setup failed with EPERM/);
  });

  it('without the filter the same child runs io_uring, so the filter is what refused it', () => {
    const env = { ...process.env };
    delete env.ACCEPTPOOL_BACKEND;
    const r = spawnSync(process.execPath, ['-e', childScript('io_uring')], { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Outcome;
    assert.equal(out.backend, 'io_uring', out.message);
    assert.equal(out.echoed, 'ping');
  });
});
