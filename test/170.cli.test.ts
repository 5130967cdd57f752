import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { Child } from '../src/cli/children';
import type { ServeMode, ServerName } from '../src/cli/servers';
import { SERVERS, serverCommand } from '../src/cli/servers';
import { backends } from '../src/index';
import { binding } from '../src/native';
import { PLATFORM_BACKEND, connect, delay, reader, waitFor, withTimeout } from './helpers';

const MAIN = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const REPO = path.resolve(__dirname, '..', '..');

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

function start(args: readonly string[], env: NodeJS.ProcessEnv = process.env, main = MAIN): Cli {
  const proc = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const out = { stdout: '', stderr: '' };
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const done = new Promise<Ran>((resolve) => proc.on('exit', (code) => resolve({ code, ...out })));
  return { proc, out, done };
}

async function run(args: readonly string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv, main?: string): Promise<Ran> {
  const cli = start(args, env, main);
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

interface SpreadJson {
  median: number;
  min: number;
  values: number[];
}

/** The parts of `acceptpool bench --json` the tests read. */
interface ReportJson {
  tool: string;
  options: { rounds: number; durationMs: number };
  machine: { cpus: number; cpuModel: string; node: string };
  servers: Array<{ name: string; label: string; engine: string }>;
  baseline: string | null;
  skipped: Array<{ name: string; reason: string }>;
  rows: Array<{ id: string; better: string; values: Record<string, SpreadJson>; ratios: Record<string, number> }>;
  clientCheck: { clients: Array<{ label: string; rate: { median: number } }>; ratio: number };
  emit: { variants: Array<{ label: string; nsPerEvent: SpreadJson }> } | null;
  overflow: { connections: number; backlog: number; servers: Record<string, number | null> };
  noise: { thresholdPct: number; runs: number; noisy: number; retried: number; maxPct: number; waitsTimedOut: number };
}

function readReport(file: string): ReportJson {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ReportJson;
}

/** Runs a program to its end (bounded). */
function runCommand(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const proc = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const done = new Promise<Ran>((resolve) => proc.on('exit', (code) => resolve({ code, ...out })));
  return withTimeout(done, timeoutMs, `${command} ${args.join(' ')}`).finally(() => proc.kill('SIGKILL'));
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
      [
        ['bench', '--only', 'echo100,warp'],
        /--only: unknown "warp" \(one of connect-close, reqrep, reqrep-proxy, echo100, echo1000, storm-overload, http-keepalive, http-close, idle, http-idle, client, emit\)/,
      ],
      [
        ['bench', '--servers', 'node,turbo'],
        /--servers: unknown "turbo" \(one of threaded, inline, threaded2, threaded2-shared, node, c\)/,
      ],
      [['bench', '--servers', 'c,node,c'], /--servers: "c" given twice/],
      [['bench', '--servers', ','], /--servers needs at least one of threaded, inline, threaded2, threaded2-shared, node, c/],
      [['bench', '--driver', 'inline'], /unknown option --driver/],
      [['bench', '--retry-noisy', '9'], /--retry-noisy must be an integer from 0 to 5, got "9"/],
      [['bench', '--wait-quiet', '-1'], /--wait-quiet must be a number from 0 to 600, got "-1"/],
      [['bench', '--bogus'], /unknown option --bogus/],
      [['bench', '--quick', '--quick'], /--quick given twice/],
      [['bench', '--quick=yes'], /--quick takes no value/],
      [['bench', 'now'], /unexpected argument "now"/],
      [['bench', '--json', '/nonexistent-dir/out.json'], /--json: cannot write into \/nonexistent-dir/],
      [['bench', '--markdown', '/nonexistent-dir/out.md'], /--markdown: cannot write into \/nonexistent-dir/],
      [['serve', '--mode', 'mirror'], /--mode must be one of echo, discard, close, http, proxy-echo, got "mirror"/],
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
      assert.match(help.stdout, /--servers a,b,\.\.\. +servers side by side \(default threaded,node\)/);
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

  describe('the server table', () => {
    const started: Child[] = [];
    afterEach(async () => {
      await Promise.all(started.splice(0).map((c) => c.stop()));
    });

    async function launch(name: ServerName, mode: ServeMode): Promise<{ child: Child; port: number }> {
      const prepared = SERVERS.get(name)?.prepare();
      assert.ok(prepared !== undefined && !('unavailable' in prepared), `${name} runs here: ${JSON.stringify(prepared)}`);
      const child = new Child(name, serverCommand(prepared, mode, 511, 60));
      started.push(child);
      const listening = await child.waitFor('listening', 15_000);
      assert.equal(typeof listening.engine, 'string');
      return { child, port: listening.port as number };
    }

    async function statsOnce(child: Child, until: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
      let m = await child.request('stats');
      for (let i = 0; i < 200 && !until(m); i++) {
        await delay(20);
        m = await child.request('stats');
      }
      return m;
    }

    for (const name of SERVERS.keys()) {
      describe(name, () => {
        it('echo: every byte comes back, and stats count the connection and the bytes', async () => {
          const { child, port } = await launch(name, 'echo');
          const socket = await connect(port);
          const got = reader(socket);
          socket.write('hello, server');
          assert.equal((await got.readExactly(13)).toString(), 'hello, server');
          const stats = await statsOnce(child, (m) => m.bytesOut === 13);
          assert.equal(stats.conns, 1);
          assert.equal(stats.accepted, 1);
          assert.equal(stats.bytesIn, 13);
          assert.equal(stats.bytesOut, 13);
          assert.ok((stats.rss as number) > 0 && (stats.cpuUs as number) >= 0, JSON.stringify(stats));
          socket.end();
          await got.waitClose();
          assert.equal((await statsOnce(child, (m) => m.conns === 0)).conns, 0);
          assert.equal(got.error, undefined);
        });

        it('discard: bytes are read and none come back', async () => {
          const { child, port } = await launch(name, 'discard');
          const socket = await connect(port);
          const got = reader(socket);
          socket.write('dropped');
          assert.equal((await statsOnce(child, (m) => m.bytesIn === 7)).bytesIn, 7);
          // Whatever the server sent would come before its FIN.
          socket.end();
          await got.waitEnd();
          assert.equal(got.length, 0);
        });

        it('close: the server ends each connection at once, gracefully', async () => {
          const { child, port } = await launch(name, 'close');
          const socket = await connect(port);
          const got = reader(socket);
          await got.waitEnd();
          socket.end();
          await got.waitClose();
          assert.equal(got.error, undefined, 'a FIN, not a reset');
          assert.equal(got.length, 0);
          assert.equal((await statsOnce(child, (m) => m.accepted === 1)).accepted, 1);
        });

        it('answers gc, refuses a request it does not know, and exits when its stdin ends', async () => {
          const { child } = await launch(name, 'echo');
          assert.equal((await child.request('gc')).type, 'gc');
          await assert.rejects(child.request('bogus'), /refused "bogus"/);
          child.proc.stdin.end();
          assert.equal(await withTimeout(child.exited, 5_000, `${name} to exit`), 0);
        });
      });
    }
  });

  describe('bench', () => {
    let dir = '';
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-cli-'));
    });
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a tiny run writes JSON with every scenario, both default servers, ratios and the client check, and an SVG', async () => {
      const json = path.join(dir, 'bench.json');
      const svg = path.join(dir, 'bench.svg');
      const r = await run(
        ['bench', '--rounds', '1', '--duration', '0.2', '--warmup', '0.05', '--idle', '300', '--json', json, '--svg', svg, '--no-progress'],
        40_000,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /connect \+ close, conn\/s/);
      assert.match(r.stdout, /load generator check/);
      assert.match(r.stdout, /^noise: /m);
      assert.equal(r.stderr, '', 'no progress output with --no-progress');
      const report = readReport(json);
      assert.equal(report.tool, 'acceptpool bench');
      assert.equal(report.options.rounds, 1);
      assert.equal(report.options.durationMs, 200);
      assert.ok(report.machine.cpus > 0);
      assert.ok(report.machine.cpuModel.length > 0);
      assert.deepEqual(
        report.servers.map((s) => s.name),
        ['node', 'threaded'],
        'the default servers, the baseline first',
      );
      assert.equal(report.baseline, 'node');
      // The bench's servers run this run's backend (ACCEPTPOOL_BACKEND in the libuv run).
      assert.match(report.servers[1].engine, new RegExp(`^${PLATFORM_BACKEND} · threaded`));
      const ids = report.rows.map((row) => row.id);
      for (const id of [
        'connect-close.rate',
        'connect-close.cpu',
        'connect-close.overflows',
        'reqrep.rate',
        'echo100.rate',
        'echo100.p99',
        'echo1000.rate',
        'idle.rss',
        'http-keepalive.rate',
        'http-close.rate',
        'http-close.overflows',
        'http-idle.rss',
      ]) {
        assert.ok(ids.includes(id), `row ${id} in ${ids.join(', ')}`);
      }
      for (const row of report.rows) {
        assert.equal(row.values.threaded.values.length, 1, `${row.id}: one value per round`);
        assert.equal(row.values.node.values.length, 1, `${row.id}: one value per round`);
      }
      const rate = report.rows.find((row) => row.id === 'echo100.rate');
      assert.ok(
        rate !== undefined && rate.values.threaded.median > 0 && rate.values.node.median > 0 && typeof rate.ratios.threaded === 'number',
      );
      assert.deepEqual(Object.keys(rate.ratios), ['threaded'], 'no ratio of the baseline against itself');
      assert.deepEqual(
        report.clientCheck.clients.map((c) => c.label),
        ['native generator, 1 thread', 'native generator, 2 threads', 'node:net client'],
      );
      assert.ok(report.clientCheck.clients.every((c) => c.rate.median > 0));
      assert.equal(report.overflow.connections, 64);
      assert.equal(report.overflow.backlog, 511);
      assert.deepEqual(Object.keys(report.overflow.servers), ['node', 'threaded']);
      // Every timed run went through the noise check: 6 scenarios x 2 servers, 3 clients.
      assert.equal(report.noise.runs, 15);
      assert.equal(report.noise.thresholdPct, 25);
      const picture = fs.readFileSync(svg, 'utf8');
      assert.match(picture, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.match(picture, /<rect x="[\d.]+" y="\d+" width="[\d.]+"/);
      assert.match(picture, /<\/svg>\n$/);
    });

    it('--servers threaded,inline,node,c: every server in its own column, each against node:net in its ratio column, also as Markdown', async () => {
      const json = path.join(dir, 'servers.json');
      const markdown = path.join(dir, 'servers.md');
      const args = [
        'bench',
        '--servers',
        'threaded,inline,node,c',
        '--only',
        'connect-close,echo100',
        '--rounds',
        '1',
        '--duration',
        '0.2',
        '--warmup',
        '0.05',
      ];
      const r = await run([...args, '--json', json, '--markdown', markdown, '--no-progress'], 40_000);
      assert.equal(r.code, 0, r.stderr);
      const report = readReport(json);
      assert.deepEqual(
        report.servers.map((s) => [s.name, s.label]),
        [
          ['node', 'node:net'],
          ['threaded', 'acceptpool threaded'],
          ['inline', 'acceptpool inline'],
          ['c', 'C epoll'],
        ],
      );
      assert.deepEqual(report.skipped, []);
      assert.deepEqual(
        report.servers.map((s) => s.engine),
        ['libuv', `${PLATFORM_BACKEND} · threaded`, `${PLATFORM_BACKEND} · inline`, 'epoll (C)'],
      );
      for (const row of report.rows) {
        for (const name of ['node', 'threaded', 'inline', 'c'])
          assert.equal(row.values[name].values.length, 1, `${row.id}: ${name} measured`);
        assert.deepEqual(Object.keys(row.ratios), row.better === 'none' ? [] : ['threaded', 'inline', 'c'], row.id);
      }
      const echo = report.rows.find((row) => row.id === 'echo100.rate');
      assert.ok(echo !== undefined);
      for (const name of ['threaded', 'inline', 'c']) {
        assert.ok(echo.values[name].median > 0, `${name} echoed`);
        assert.ok(
          Math.abs(echo.ratios[name] - echo.values[name].median / echo.values.node.median) < 1e-9,
          `${name}'s ratio is against node:net`,
        );
      }
      const header = /^ +node:net +acceptpool threaded +ratio +acceptpool inline +ratio +C epoll +ratio$/m;
      assert.match(r.stdout, header);
      const md = fs.readFileSync(markdown, 'utf8');
      assert.ok(md.startsWith(`\`acceptpool ${args.join(' ')} --json ${json} --markdown ${markdown} --no-progress\``), md.slice(0, 200));
      assert.match(md, /^machine: \d+ x .+, Linux .+, node v\d+/m);
      assert.match(md, /^\| {2}\| node:net \| acceptpool threaded \| ratio \| acceptpool inline \| ratio \| C epoll \| ratio \|$/m);
      assert.match(
        md,
        /^\| echo 16 B, 100 connections, msg\/s \| [\d,]+ \| [\d,]+ \| [\d.]+x \| [\d,]+ \| [\d.]+x \| [\d,]+ \| [\d.]+x \|$/m,
      );
    });

    it('--backends epoll,io_uring: every acceptpool server once per backend, each against node:net in the same run', async function () {
      if (!backends().includes('io_uring')) this.skip(); // a build without io_uring (not Linux) has one backend to compare
      const json = path.join(dir, 'backends.json');
      const args = ['bench', '--backends', 'epoll,io_uring', '--servers', 'threaded,node', '--only', 'echo100'];
      const r = await run([...args, '--rounds', '1', '--duration', '0.2', '--warmup', '0.05', '--json', json, '--no-progress'], 40_000);
      assert.equal(r.code, 0, r.stderr);
      const report = readReport(json);
      assert.deepEqual(
        report.servers.map((s) => [s.name, s.label, s.engine]),
        [
          ['node', 'node:net', 'libuv'],
          ['threaded@epoll', 'acceptpool threaded (epoll)', 'epoll · threaded'],
          ['threaded@io_uring', 'acceptpool threaded (io_uring)', 'io_uring · threaded'],
        ],
      );
      const echo = report.rows.find((row) => row.id === 'echo100.rate');
      assert.ok(echo !== undefined);
      for (const name of ['threaded@epoll', 'threaded@io_uring']) {
        assert.ok(echo.values[name].median > 0, `${name} echoed`);
        assert.ok(Math.abs(echo.ratios[name] - echo.values[name].median / echo.values.node.median) < 1e-9, `${name} against node:net`);
      }
    });

    it('--backends refuses a backend this build lacks, naming what it has', async () => {
      const r = await run(['bench', '--backends', 'kqueue'], 10_000);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /kqueue/);
    });

    it('without a C compiler the c server is skipped with a note, and the others are measured', async () => {
      const json = path.join(dir, 'nocc.json');
      const emptyBin = fs.mkdtempSync(path.join(dir, 'bin-'));
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: emptyBin };
      delete env.CC;
      const r = await run(
        ['bench', '--servers', 'node,c', '--only', 'echo100', '--rounds', '1', '--duration', '0.2', '--warmup', '0.05', '--json', json],
        30_000,
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /skipping c: no C compiler \(looked for cc, gcc, clang on PATH; set CC to choose one\)/);
      assert.match(r.stdout, /^skipped c: no C compiler/m);
      const report = readReport(json);
      assert.deepEqual(
        report.servers.map((s) => s.name),
        ['node'],
      );
      assert.deepEqual(
        report.skipped.map((s) => s.name),
        ['c'],
      );
      // Only the c server asked for, and it cannot run: nothing to measure.
      const alone = await run(['bench', '--servers', 'c', '--only', 'echo100', '--rounds', '1', '--duration', '0.2'], 15_000, env);
      assert.equal(alone.code, 1);
      assert.match(alone.stderr, /no server to measure: c: no C compiler/);
    });

    it('an installed package (npm pack, unpacked) builds the C server it ships: into its build/, else the temp dir', async () => {
      const pack = await runCommand('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], REPO, 30_000);
      assert.equal(pack.code, 0, pack.stderr);
      const packed = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
      assert.ok(
        packed[0].files.some((f) => f.path === 'src/cli/cserver.c'),
        'the C source is in the package',
      );
      const installed = path.join(dir, 'installed');
      fs.mkdirSync(installed);
      const untar = await runCommand('tar', ['xzf', path.join(dir, packed[0].filename), '-C', installed], dir, 30_000);
      assert.equal(untar.code, 0, untar.stderr);
      const pkg = path.join(installed, 'package');
      const main = path.join(pkg, 'dist', 'src', 'cli', 'main.js');
      const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
      // The addon is built at install; this one stands in for it.
      const env = { ...process.env, ACCEPTPOOL_NATIVE: path.join(REPO, 'build', 'Release', 'acceptpool.node'), TMPDIR: tmp };
      const args = [
        'bench',
        '--servers',
        'c',
        '--only',
        'echo100',
        '--rounds',
        '1',
        '--duration',
        '0.2',
        '--warmup',
        '0.05',
        '--no-progress',
      ];
      // build/ cannot hold a directory here: the temp dir it is.
      fs.writeFileSync(path.join(pkg, 'build'), '');
      const inTmp = await run(args, 30_000, env, main);
      assert.equal(inTmp.code, 0, inTmp.stderr);
      assert.match(inTmp.stdout, /servers in processes of their own: C epoll \(epoll \(C\)\)/);
      const user = String(process.getuid?.() ?? os.userInfo().username);
      assert.equal(fs.readdirSync(path.join(tmp, `acceptpool-bench-${user}`)).filter((f) => f.startsWith('cserver-')).length, 1);
      fs.rmSync(path.join(pkg, 'build'));
      const inPackage = await run(args, 30_000, env, main);
      assert.equal(inPackage.code, 0, inPackage.stderr);
      assert.equal(fs.readdirSync(path.join(pkg, 'build', 'bench')).filter((f) => f.startsWith('cserver-')).length, 1);
    });

    it('a run while another process burns a core is flagged noisy, measured again, and waits for quiet in vain', async () => {
      const json = path.join(dir, 'noisy.json');
      const burner = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
      try {
        const r = await run(
          [
            'bench',
            '--servers',
            'node',
            '--only',
            'echo100',
            '--rounds',
            '1',
            '--duration',
            '0.3',
            '--warmup',
            '0.05',
            '--retry-noisy',
            '1',
            '--wait-quiet',
            '0.6',
            '--json',
            json,
          ],
          30_000,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /other processes used \d+% of a core during that run: measuring it again/);
        const report = readReport(json);
        assert.equal(report.noise.runs, 1, 'the kept run');
        assert.equal(report.noise.retried, 1);
        assert.equal(report.noise.noisy, 1, 'still noisy when measured again');
        assert.equal(report.noise.waitsTimedOut, 2, 'no quiet before either attempt');
        assert.ok(report.noise.maxPct > 25, `other processes' share ${report.noise.maxPct}`);
        assert.match(r.stdout, /^noise: .* 1 of 1 runs above 25%, 1 run\(s\) measured again, 2 wait\(s\) for quiet ran out$/m);
        assert.match(r.stdout, /^note: 1 run\(s\) were noisy: rerun on a quieter machine/m);
      } finally {
        burner.kill('SIGKILL');
      }
    });

    it('--only emit runs the event-delivery micro-benchmark in a process of its own', async () => {
      const json = path.join(dir, 'emit.json');
      const r = await run(['bench', '--only', 'emit', '--rounds', '1', '--quick', '--json', json, '--no-progress'], 30_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /event delivery, in process/);
      const report = readReport(json);
      assert.deepEqual(report.rows, []);
      assert.ok(report.emit !== null);
      assert.deepEqual(
        report.emit.variants.map((v) => v.label),
        [
          'EventEmitter.emit, 1 listener',
          'isolated delivery, 1 listener',
          'EventEmitter.emit, 2 listeners',
          'isolated delivery, 2 listeners',
        ],
      );
      for (const v of report.emit.variants) assert.ok(v.nsPerEvent.values.length === 5 && v.nsPerEvent.min > 0, v.label);
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
