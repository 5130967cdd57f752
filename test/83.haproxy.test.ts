/**
 * Behind a real HAProxy (Debian's haproxy, installed by .ci/run): TCP mode
 * with send-proxy (v1) and send-proxy-v2, clients bound to distinct
 * 127.0.0.x sources, and HAProxy's own health checks (PROXY v1 line / v2
 * LOCAL, then a tcp-check PING/PONG the server must answer) holding the
 * servers UP. The test writes the config, starts HAProxy on loopback ports
 * and stops it after. Where haproxy cannot be installed (Windows) the suite
 * says so and skips; it never passes silently without it.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { DRIVERS, HOST4, cleanup, connect, delay, reader, startServer, waitFor } from './helpers';
import type { Harness } from './helpers';

const HAPROXY = findHaproxy();

function findHaproxy(): string | null {
  for (const candidate of ['haproxy', '/usr/sbin/haproxy']) {
    const r = spawnSync(candidate, ['-v'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return candidate;
  }
  return null;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, HOST4, resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface Balancer {
  child: ChildProcess;
  v1Port: number;
  v2Port: number;
  statsPort: number;
  dir: string;
  output: string[];
}

/** Starts HAProxy in front of `appPort`: one frontend per PROXY version. */
async function startHaproxy(appPort: number): Promise<Balancer> {
  const [v1Port, v2Port, statsPort] = [await freePort(), await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-haproxy-'));
  const check = 'check inter 200ms fall 2 rise 1';
  const config = [
    'global',
    '  maxconn 512',
    `  stats socket ipv4@${HOST4}:${statsPort} level admin`,
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 10s',
    '  timeout server 10s',
    'frontend fe_v1',
    `  bind ${HOST4}:${v1Port}`,
    '  default_backend be_v1',
    'frontend fe_v2',
    `  bind ${HOST4}:${v2Port}`,
    '  default_backend be_v2',
    // The health check speaks the app's protocol after the PROXY header:
    // the server must see the header, take the session and answer.
    'backend be_v1',
    '  option tcp-check',
    '  tcp-check send PING\\r\\n',
    '  tcp-check expect string PONG',
    `  server app ${HOST4}:${appPort} send-proxy ${check}`,
    'backend be_v2',
    '  option tcp-check',
    '  tcp-check send PING\\r\\n',
    '  tcp-check expect string PONG',
    `  server app ${HOST4}:${appPort} send-proxy-v2 ${check}`,
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, config);
  const child = spawn(HAPROXY as string, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  const b: Balancer = { child, v1Port, v2Port, statsPort, dir, output };
  // Up once its runtime API answers.
  await pollUntil(
    async () => {
      assert.equal(child.exitCode, null, `haproxy exited: ${output.join('')}`);
      return (await runtime(b, 'show info').catch(() => '')).includes('Name: HAProxy');
    },
    10_000,
    'haproxy up',
  );
  return b;
}

async function stopHaproxy(b: Balancer): Promise<void> {
  if (b.child.exitCode === null) {
    const exited = new Promise<void>((resolve) => b.child.once('exit', () => resolve()));
    b.child.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(b.dir, { recursive: true, force: true });
}

/** Polls an async condition every 50 ms, for at most `ms`. */
async function pollUntil(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await delay(50);
  }
}

/** One command on HAProxy's runtime API. */
function runtime(b: Balancer, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(b.statsPort, HOST4);
    const chunks: Buffer[] = [];
    s.on('connect', () => s.end(`${command}\n`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

/** The status column of `backend/app` in `show stat` ('UP', 'DOWN', ...). */
async function serverStatus(b: Balancer, backend: string): Promise<string> {
  const csv = await runtime(b, 'show stat');
  const lines = csv.split('\n');
  const columns = lines[0].replace(/^# /, '').split(',');
  const at = columns.indexOf('status');
  const row = lines.find((l) => l.startsWith(`${backend},app,`));
  return row === undefined ? 'missing' : row.split(',')[at];
}

/** The app: every session answers PING with PONG, anything else with the address it sees. */
function serve(h: Harness): void {
  h.server.on('data', (s, chunk) => {
    const text = chunk.toString();
    if (text.startsWith('PING')) {
      s.send('PONG\r\n');
    } else if (text.startsWith('who')) {
      s.send(`${s.remoteAddress} ${s.remotePort} ${s.proxy?.version ?? 0}\n`);
    }
  });
}

for (const driver of DRIVERS) {
  describe(`behind a real HAProxy (${driver} driver)`, function () {
    this.timeout(60_000);
    let balancer: Balancer | null = null;

    before(function () {
      if (HAPROXY === null) {
        console.log(`      NOTE: haproxy is not installed here (${process.platform}); .ci/run installs it on Linux. Skipped.`);
        this.skip();
      }
    });

    afterEach(async () => {
      if (balancer !== null) await stopHaproxy(balancer);
      balancer = null;
      await cleanup();
    });

    it('send-proxy and send-proxy-v2: each session has its own client address; the health checks keep both servers UP', async () => {
      const h = await startServer(driver, { proxyProtocol: { trusted: ['127.0.0.1/32'] } });
      serve(h);
      const b = (balancer = await startHaproxy(h.port));
      await waitFor(() => h.server.stats().proxyLocal > 0 && h.server.stats().proxyHeaders > 0, 10_000, 'health checks of both backends');
      for (const backend of ['be_v1', 'be_v2']) {
        await pollUntil(async () => (await serverStatus(b, backend)) === 'UP', 10_000, `${backend} UP`);
      }
      const answers: { source: string; port: number; version: number; line: string }[] = [];
      const clients: Promise<void>[] = [];
      for (let i = 0; i < 8; i++) {
        const source = `127.0.0.${2 + i}`;
        const version = i % 2 === 0 ? 1 : 2;
        clients.push(
          (async () => {
            const c = await connect(version === 1 ? b.v1Port : b.v2Port, HOST4, 5_000, source);
            const port = c.localPort as number;
            const r = reader(c);
            c.write('who\n');
            await waitFor(() => r.text().endsWith('\n'), 10_000, `answer to ${source}`);
            answers.push({ source, port, version, line: r.text().trim() });
          })(),
        );
      }
      await Promise.all(clients);
      for (const a of answers) assert.equal(a.line, `${a.source} ${a.port} ${a.version}`, `client ${a.source} (v${a.version})`);
      const st = h.server.stats();
      assert.equal(st.proxyUntrusted + st.proxyMalformed + st.proxyTimeouts + st.proxyBusy, 0);
      // v2 checks come as LOCAL (the balancer's own connection), v1 checks as a PROXY line naming HAProxy itself.
      const local = h.sessions.filter((s) => s.proxy?.command === 'local');
      assert.ok(local.length > 0, 'no LOCAL health check session');
      for (const s of local) assert.equal(s.remoteAddress, '127.0.0.1');
      assert.equal(await serverStatus(b, 'be_v2'), 'UP');
    });

    it('a direct client that bypasses HAProxy, from an untrusted address, is refused while HAProxy traffic flows', async () => {
      const h = await startServer(driver, { proxyProtocol: { trusted: ['127.0.0.1/32'] } });
      serve(h);
      const b = (balancer = await startHaproxy(h.port));
      const direct = await connect(h.port, HOST4, 5_000, '127.0.0.7');
      const rd = reader(direct);
      direct.write('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nwho\n');
      await rd.waitClose();
      assert.equal(rd.length, 0);
      const via = await connect(b.v2Port, HOST4, 5_000, '127.0.0.7');
      const rv = reader(via);
      via.write('who\n');
      await waitFor(() => rv.text().endsWith('\n'), 10_000, 'answer through HAProxy');
      assert.equal(rv.text().split(' ')[0], '127.0.0.7');
      assert.ok(h.server.stats().proxyUntrusted >= 1);
    });
  });
}
