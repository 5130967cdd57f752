/**
 * The published types (dist/src/index.d.ts and what it reaches), checked with
 * the project's own tsc under strict settings, as a user's code meets them:
 * every ```ts block of the README compiles; internals (the native binding,
 * the endpoint's state, a session's close bookkeeping) are not in them; what
 * users may only read cannot be written; sessionClose's error is an
 * AcceptPoolSystemError.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { OPTION_DEFAULTS } from '../src/options';

const ROOT = path.resolve(__dirname, '..', '..');
const TYPES = path.join(ROOT, 'dist', 'src', 'index.d.ts');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function readme(): string {
  return fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
}

/** Every ```ts block of the README, with the line it starts on. */
function readmeBlocks(): { line: number; code: string }[] {
  const text = readme();
  const blocks: { line: number; code: string }[] = [];
  const fence = /^```ts\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    blocks.push({ line: text.slice(0, m.index).split('\n').length, code: m[1] });
  }
  return blocks;
}

// What a user's code may and may not do with the published types. The line
// after each ts-expect-error directive must be an error, or tsc fails on the
// directive.
const SURFACE = `
import { AcceptPoolSystemError, Client, Session, createClient, createServer } from 'acceptpool';
import type { CloseReason } from 'acceptpool';

export function surface(s: Session): void {
  const server = createServer();
  const closed: boolean = s.closed;
  const ending: boolean = s.ending;
  void closed;
  void ending;
  // @ts-expect-error closed is read-only
  s.closed = true;
  // @ts-expect-error ending is read-only
  s.ending = false;
  // @ts-expect-error a session's close bookkeeping is internal
  void s.closeStep;
  // @ts-expect-error internal
  s.markClosed();
  // @ts-expect-error sessions are made by servers and clients only
  void new Session();
  // @ts-expect-error the native object is internal
  void server.native;
  // @ts-expect-error the resolved options are internal
  void server.opts;
  // @ts-expect-error the event plumbing is internal
  server.deliver1('session', s);
  // @ts-expect-error the commands behind Session.destroy() and end() are internal
  server.abortSession(s.id);
  // @ts-expect-error the shared client's auto-ref is internal
  void new Client(undefined, true);
  // @ts-expect-error event names are checked
  server.on('sesion', () => undefined);
  server.on('data', (session, chunk) => {
    const id: number = session.id;
    const bytes: Buffer = chunk;
    // @ts-expect-error listener arguments are typed, not any
    const text: string = chunk;
    void id, bytes, text;
  });
  createClient().once('session', (session) => {
    // @ts-expect-error its session is a Session
    const port: string = session.remotePort;
    void port;
  });
  // @ts-expect-error a client has no 'listening' event
  createClient().on('listening', () => undefined);
  server.on('sessionClose', (_s, reason: CloseReason, err) => {
    const e: AcceptPoolSystemError | undefined = err;
    if (e !== undefined) console.log(reason, e.code, e.errno, e.syscall);
  });
  s.onclose = (_reason, err) => {
    const e: AcceptPoolSystemError | undefined = err;
    void e;
  };
}
`;

describe('published types (strict tsc against dist/src/index.d.ts)', function () {
  this.timeout(60_000);
  let dir = '';
  let files: string[] = [];
  let result: { status: number | null; out: string };

  before(() => {
    assert.ok(fs.existsSync(TYPES), `${TYPES} missing: compile first`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-types-'));
    const sources = readmeBlocks().map((b) => ({ name: `readme-line-${b.line}.ts`, code: b.code }));
    sources.push({ name: 'surface.ts', code: SURFACE });
    for (const s of sources) fs.writeFileSync(path.join(dir, s.name), s.code);
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          // README examples use top-level await, as an ES module would.
          target: 'ES2022',
          module: 'ES2022',
          moduleResolution: 'node10',
          isolatedModules: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
          paths: { acceptpool: [TYPES] },
        },
        files: sources.map((s) => s.name),
      }),
    );
    const r = spawnSync(process.execPath, [TSC, '-p', path.join(dir, 'tsconfig.json'), '--listFiles'], { encoding: 'utf8' });
    result = { status: r.status, out: `${r.stdout}${r.stderr}` };
    files = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.includes('error TS'));
  });

  after(() => {
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the README has TypeScript examples to check', () => {
    assert.ok(readmeBlocks().length >= 3, "expected the README's ```ts blocks");
  });

  it('every README ```ts block and the surface checks compile under strict TypeScript', () => {
    assert.equal(
      result.status,
      0,
      result.out
        .split('\n')
        .filter((l) => l.includes('error TS'))
        .join('\n'),
    );
  });

  it('the published types do not reach the native binding or the wire', () => {
    // tsc lists files with forward slashes, also on Windows.
    const published = files.map((f) => f.replace(/\\/g, '/')).filter((f) => f.includes('/dist/src/'));
    assert.ok(
      published.some((f) => f.endsWith('/dist/src/index.d.ts')),
      `index.d.ts not among ${published.join(', ')}`,
    );
    for (const internal of ['native.d.ts', 'wire.d.ts']) {
      assert.ok(!published.some((f) => f.endsWith(`/dist/src/${internal}`)), `${internal} is reachable from index.d.ts`);
    }
  });
});

/** A default as the README writes it: 1,048,576, 64 KiB, 4 MiB, true, `'threaded'`, 0 (off). */
function readmeValue(text: string): number | boolean | string {
  const t = text
    .replace(/`/g, '')
    .replace(/\s*\(.*\)$/, '')
    .trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^'.*'$/.test(t)) return t.slice(1, -1);
  const m = /^([\d,]+)(?: (KiB|MiB))?$/.exec(t);
  assert.ok(m !== null, `cannot read the README default ${JSON.stringify(text)}`);
  return Number(m[1].replace(/,/g, '')) * (m[2] === 'KiB' ? 1024 : m[2] === 'MiB' ? 1024 * 1024 : 1);
}

describe('README option table', () => {
  it('names every server option with the default src/options.ts applies', () => {
    const rows = new Map<string, string>();
    for (const line of readme().split('\n')) {
      const m = /^\| `(\w+)`(?: \/ `\w+`)? \| ([^|]+) \|/.exec(line);
      if (m !== null) rows.set(m[1], m[2]);
    }
    // The backend's default is the platform's: the README lists Linux's,
    // Windows' and everywhere else's, in that order.
    const column = (key: string, cell: string): string => {
      const values = cell.split(' / ');
      if (key !== 'backend') return values[0];
      return values[process.platform === 'linux' ? 0 : process.platform === 'win32' ? 1 : 2].replace(/\s*\(.*$/, '');
    };
    for (const [key, value] of Object.entries(OPTION_DEFAULTS)) {
      const row = rows.get(key);
      assert.ok(row !== undefined, `the README's option table has no row for ${key}`);
      assert.equal(readmeValue(column(key, row)), value, `README default of ${key}`);
    }
  });
});
