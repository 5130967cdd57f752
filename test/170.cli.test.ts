import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { binding } from '../src/native';
import { delay, waitFor, withTimeout } from './helpers';

const MAIN = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Cli {
  proc: ChildProcess;
  out: { stdout: string; stderr: string };
  done: Promise<Ran>;
}

function start(args: readonly string[]): Cli {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const done = new Promise<Ran>((resolve) => proc.on('exit', (code) => resolve({ code, ...out })));
  return { proc, out, done };
}

async function run(args: readonly string[], timeoutMs = 15_000): Promise<Ran> {
  const cli = start(args);
  try {
    return await withTimeout(cli.done, timeoutMs, `acceptpool ${args.join(' ')}`);
  } finally {
    cli.proc.kill('SIGKILL');
  }
}

/** Every process descended from `root` now (Linux /proc). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (pid: number): void => {
    for (const [child, ppid] of parent) {
      if (ppid === pid) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(root);
  return found;
}

/** Whether a process still runs (a zombie waiting to be reaped does not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// The CLI is driven through pipes and POSIX signals, and bench reads /proc:
// node.exe under Wine can neither write to a pipe nor take SIGINT, so these
// run on Linux only.
(process.platform === 'win32' ? describe.skip : describe)('acceptpool command line', function () {
  this.timeout(60_000);

  describe('option validation', () => {
    const cases: Array<[string[], RegExp]> = [
      [['bench', '--rounds', '0'], /--rounds must be an integer from 1 to 100, got "0"/],
      [['bench', '--duration', 'fast'], /--duration must be a number from 0\.1 to 3600, got "fast"/],
      [['bench', '--duration'], /--duration needs a value/],
      [['bench', '--only', 'echo100,warp'], /--only: unknown "warp" \(one of connect-close, reqrep, echo100, echo1000, idle, client\)/],
      [['bench', '--driver', 'turbo'], /--driver must be one of inline, threaded, got "turbo"/],
      [['bench', '--bogus'], /unknown option --bogus/],
      [['bench', '--quick', '--quick'], /--quick given twice/],
      [['bench', '--quick=yes'], /--quick takes no value/],
      [['bench', 'now'], /unexpected argument "now"/],
      [['bench', '--json', '/nonexistent-dir/out.json'], /--json: cannot write into \/nonexistent-dir/],
      [['serve', '--mode', 'mirror'], /--mode must be one of echo, discard, close, got "mirror"/],
      [['serve', '--port', '70000'], /--port must be an integer from 0 to 65535, got "70000"/],
      [['launch'], /unknown command "launch"/],
    ];
    for (const [args, message] of cases) {
      it(`acceptpool ${args.join(' ')}: exits 2 with a message naming the mistake and a pointer to --help`, async () => {
        const r = await run(args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /see acceptpool( \w+)? --help/);
        assert.equal(r.stdout, '');
      });
    }

    it('bench --idle as many as this process has descriptors (RLIMIT_NOFILE): exits 2 with a range that stays below them', async () => {
      const limit = binding.descriptorLimit();
      assert.ok(limit !== null, 'no descriptor limit on this platform');
      const r = await run(['bench', '--idle', String(limit)]);
      assert.equal(r.code, 2, r.stderr);
      const range = /--idle must be an integer from 100 to (\d+)/.exec(r.stderr);
      assert.ok(range !== null, r.stderr);
      const max = Number(range[1]);
      assert.ok(max >= 100 && max < limit, `--idle max ${max} with ${limit} descriptors per process`);
    });

    it('prints help (exit 0) and the version', async () => {
      const help = await run(['bench', '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /usage: acceptpool bench \[options\]/);
      assert.match(help.stdout, /--quick/);
      const serveHelp = await run(['serve', '--help']);
      assert.equal(serveHelp.code, 0);
      assert.match(serveHelp.stdout, /--mode echo\|discard\|close/);
      const version = await run(['--version']);
      assert.equal(version.code, 0);
      assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
      const none = await run([]);
      assert.equal(none.code, 2);
      assert.match(none.stdout, /commands:/);
    });
  });

  describe('serve', () => {
    it('listens, echoes, prints stats each second, and stops on SIGINT with exit 0 and no child left', async () => {
      const cli = start(['serve', '--port', '0', '--mode', 'echo']);
      try {
        await waitFor(() => /on 127\.0\.0\.1:(\d+)/.test(cli.out.stdout), 10_000, 'the listening line');
        const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(cli.out.stdout)?.[1]);
        const socket = net.connect(port, '127.0.0.1');
        const echoed = await withTimeout(
          new Promise<string>((resolve, reject) => {
            let got = '';
            socket.on('data', (d) => {
              got += d.toString();
              if (got.length >= 5) resolve(got);
            });
            socket.on('error', reject);
            socket.write('hello');
          }),
          5_000,
          'the echo',
        );
        assert.equal(echoed, 'hello');
        await waitFor(() => /conns 1 .*accepted 1/.test(cli.out.stdout), 5_000, 'a stats line with the connection');
        socket.destroy();
        const pid = cli.proc.pid as number;
        const kids = descendants(pid);
        cli.proc.kill('SIGINT');
        const r = await withTimeout(cli.done, 10_000, 'serve to exit after SIGINT');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /stopping/);
        for (const kid of kids) assert.equal(alive(kid), false, `process ${kid} outlived serve`);
      } finally {
        cli.proc.kill('SIGKILL');
      }
    });

    it('close mode closes every connection at once', async () => {
      const cli = start(['serve', '--port', '0', '--mode', 'close']);
      try {
        await waitFor(() => /on 127\.0\.0\.1:(\d+)/.test(cli.out.stdout), 10_000, 'the listening line');
        const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(cli.out.stdout)?.[1]);
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        await withTimeout(new Promise((resolve) => socket.on('close', resolve)), 5_000, 'the server to close the connection');
      } finally {
        cli.proc.kill('SIGKILL');
      }
    });
  });

  describe('bench', () => {
    let dir = '';
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-cli-'));
    });
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a tiny run writes JSON with every scenario, both servers, ratios and the client check, and an SVG', async () => {
      const json = path.join(dir, 'bench.json');
      const svg = path.join(dir, 'bench.svg');
      const r = await run(
        ['bench', '--rounds', '1', '--duration', '0.2', '--warmup', '0.05', '--idle', '300', '--json', json, '--svg', svg, '--no-progress'],
        40_000,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /connect \+ close, conn\/s/);
      assert.match(r.stdout, /load generator check/);
      assert.equal(r.stderr, '', 'no progress output with --no-progress');
      const report = JSON.parse(fs.readFileSync(json, 'utf8')) as {
        tool: string;
        options: { rounds: number; durationMs: number };
        machine: { cpus: number; node: string };
        servers: { acceptpool: string; net: string };
        rows: Array<{ id: string; better: string; ratio: number | null; acceptpool: { median: number; values: number[] }; net: { median: number; values: number[] } }>;
        clientCheck: { clients: Array<{ label: string; rate: { median: number } }>; ratio: number };
        overflow: { connections: number; backlog: number; acceptpool: number | null; net: number | null };
      };
      assert.equal(report.tool, 'acceptpool bench');
      assert.equal(report.options.rounds, 1);
      assert.equal(report.options.durationMs, 200);
      assert.ok(report.machine.cpus > 0);
      assert.match(report.servers.acceptpool, /epoll/);
      const ids = report.rows.map((row) => row.id);
      for (const id of ['connect-close.rate', 'connect-close.cpu', 'connect-close.overflows', 'reqrep.rate', 'echo100.rate', 'echo100.p99', 'echo1000.rate', 'idle.rss']) {
        assert.ok(ids.includes(id), `row ${id} in ${ids.join(', ')}`);
      }
      for (const row of report.rows) {
        assert.equal(row.acceptpool.values.length, 1, `${row.id}: one value per round`);
        assert.equal(row.net.values.length, 1, `${row.id}: one value per round`);
      }
      const rate = report.rows.find((row) => row.id === 'echo100.rate');
      assert.ok(rate !== undefined && rate.acceptpool.median > 0 && rate.net.median > 0 && typeof rate.ratio === 'number');
      assert.deepEqual(
        report.clientCheck.clients.map((c) => c.label),
        ['native generator, 1 thread', 'native generator, 2 threads', 'node:net client'],
      );
      assert.ok(report.clientCheck.clients.every((c) => c.rate.median > 0));
      assert.equal(report.overflow.connections, 64);
      assert.equal(report.overflow.backlog, 511);
      const picture = fs.readFileSync(svg, 'utf8');
      assert.match(picture, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.match(picture, /<rect x="[\d.]+" y="\d+" width="[\d.]+"/);
      assert.match(picture, /<\/svg>\n$/);
    });

    it('Ctrl-C stops a run: exit 130, and every server and client process it started is gone', async () => {
      const cli = start(['bench', '--rounds', '3', '--duration', '5']);
      try {
        // Non-TTY progress: one line per step.
        await waitFor(() => /\[1\/\d+\]/.test(cli.out.stderr), 15_000, 'the first step');
        const pid = cli.proc.pid as number;
        await waitFor(() => descendants(pid).length >= 2, 10_000, 'both server processes');
        await delay(300);
        const kids = descendants(pid);
        cli.proc.kill('SIGINT');
        const r = await withTimeout(cli.done, 15_000, 'bench to exit after SIGINT');
        assert.equal(r.code, 130, r.stderr);
        assert.match(r.stderr, /interrupted/);
        await waitFor(() => kids.every((k) => !alive(k)), 5_000, `children ${kids.join(', ')} gone`);
      } finally {
        cli.proc.kill('SIGKILL');
      }
    });
  });
});
