/**
 * One build input: node-gyp (the addon users get) and CMake (the native
 * tests, the ASan addon, the Windows addon) compile the sources of
 * native/build.json with the same flags, and a build that lost a source
 * fails loudly instead of shipping an addon that crashes when it first
 * calls the missing code.
 *
 * Linux only: on Windows the addon is CMake's alone and the linker itself
 * refuses undefined symbols.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD_CONFIG = path.join(ROOT, 'scripts', 'build-config.js');
const CMAKE_JS = path.join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
/** Where node-gyp's make build records each object's compile command. */
const GYP_DEPS = path.join(ROOT, 'build', 'Release', '.deps', 'Release', 'obj.target', 'acceptpool');

/**
 * Definitions node-gyp adds for Node's own headers (V8 and libuv linkage,
 * OpenSSL, the module name, large files and format macros that are already
 * the defaults on 64-bit glibc); acceptpool's code reads none of them.
 */
const NODE_GYP_OWN_DEFINES = new Set([
  'NODE_GYP_MODULE_NAME=acceptpool',
  'USING_UV_SHARED=1',
  'USING_V8_SHARED=1',
  'V8_DEPRECATION_WARNINGS=1',
  '_GLIBCXX_USE_CXX11_ABI=1',
  '_FILE_OFFSET_BITS=64',
  '_LARGEFILE_SOURCE',
  '__STDC_FORMAT_MACROS',
  'OPENSSL_NO_PINSHARED',
  'OPENSSL_THREADS',
]);

/** The tools run here are not under test: no sanitizer runtime preloaded into them. */
function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  return env;
}

function runTool(
  command: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: 120_000,
    env: options.env ?? toolEnv(),
    input: options.input,
    cwd: options.cwd,
  });
  assert.ok(!r.error, `${command}: ${r.error?.message}`);
  return r;
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-build-'));
}

/** Splits a recorded shell command line (single quotes only, as gyp writes them). */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/** What decides the code a compiler makes from a command: the last -O and -std, each -f feature's last setting, the warnings and definitions. */
interface Effective {
  optimize: string;
  std: string;
  features: Record<string, boolean>;
  warnings: string[];
  defines: string[];
}

function effective(args: readonly string[]): Effective {
  const e = { optimize: '-O0', std: '', features: {} as Record<string, boolean>, warnings: new Set<string>(), defines: new Set<string>() };
  for (const arg of args) {
    if (/^-O/.test(arg)) e.optimize = arg;
    else if (arg.startsWith('-std=')) e.std = arg;
    else if (/^-f(PIC|PIE|pic|pie)$/.test(arg))
      continue; // position independence: a shared object is PIC either way
    else if (arg.startsWith('-fno-')) e.features[arg.slice(5)] = false;
    else if (arg.startsWith('-f')) e.features[arg.slice(2)] = true;
    else if (/^-W[^l,]/.test(arg)) e.warnings.add(arg);
    else if (arg.startsWith('-D')) e.defines.add(arg.slice(2));
  }
  return { ...e, warnings: [...e.warnings].sort(), defines: [...e.defines].sort() };
}

/** Source (relative to the root) -> the compile command node-gyp ran for it. */
function gypCommands(): Map<string, string[]> {
  assert.ok(fs.existsSync(GYP_DEPS), `${GYP_DEPS} missing: build the addon first (npm install)`);
  const commands = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.o.d')) {
        const line = fs
          .readFileSync(file, 'utf8')
          .split('\n')
          .find((l) => l.startsWith('cmd_'));
        assert.ok(line, `no command recorded in ${file}`);
        const args = words(line.slice(line.indexOf(':=') + 2));
        const source = args.find((a) => a.endsWith('.cc'));
        assert.ok(source, `no source in ${line}`);
        commands.set(path.relative(ROOT, path.resolve(ROOT, 'build', source)), args);
      }
    }
  };
  walk(GYP_DEPS);
  return commands;
}

/** Source (relative to the root) -> its compile command in a plain cmake-js configure of the addon and the tests. */
function cmakeCommands(): Map<string, string[]> {
  const out = tempDir();
  try {
    const r = runTool(process.execPath, [
      CMAKE_JS,
      'configure',
      '--out',
      out,
      '--CDCMAKE_EXPORT_COMPILE_COMMANDS=ON',
      '--CDACCEPTPOOL_BUILD_TESTS=ON',
    ]);
    assert.equal(r.status, 0, `cmake-js configure failed:\n${r.stdout}\n${r.stderr}`);
    const entries = JSON.parse(fs.readFileSync(path.join(out, 'compile_commands.json'), 'utf8')) as { file: string; command: string }[];
    return new Map(entries.map((e) => [path.relative(ROOT, e.file), words(e.command)]));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** A copy of what binding.gyp and scripts/build-config.js read, to change without touching the checkout. */
function copyOfTree(): string {
  const dir = tempDir();
  fs.cpSync(path.join(ROOT, 'native'), path.join(dir, 'native'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.copyFileSync(BUILD_CONFIG, path.join(dir, 'scripts', 'build-config.js'));
  for (const file of ['package.json', 'binding.gyp']) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
  return dir;
}

interface BuildList {
  cflags: string[];
  cflags_msvc: string[];
  components: Record<string, Record<string, string[]>>;
}

/** Rewrites the copy's native/build.json. */
function editList(dir: string, edit: (list: BuildList) => void): BuildList {
  const file = path.join(dir, 'native', 'build.json');
  const list = JSON.parse(fs.readFileSync(file, 'utf8')) as BuildList;
  edit(list);
  fs.writeFileSync(file, JSON.stringify(list, null, 2));
  return list;
}

/** The target as gyp resolves binding.gyp for `os` (node-gyp configure, gyp's gypd output): what make, Xcode and MSBuild would get. */
interface GypTarget {
  sources: string[];
  libraries?: string[];
  cflags_cc?: string[];
  xcode_settings?: { OTHER_CPLUSPLUSFLAGS?: string[] };
  msvs_settings?: { VCCLCompilerTool?: { AdditionalOptions?: string[] } };
}

/** npm's own node-gyp (npm run sets npm_config_node_gyp; elsewhere beside the global npm). */
function nodeGyp(): string {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const globalRoot = runTool('npm', ['root', '-g']).stdout.trim();
  return path.join(globalRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

function gypTarget(dir: string, os: string): GypTarget {
  const nodedir = path.resolve(path.dirname(process.execPath), '..');
  const r = runTool(process.execPath, [nodeGyp(), 'configure', `--nodedir=${nodedir}`, '--', `-DOS=${os}`, '-f', 'gypd'], { cwd: dir });
  assert.equal(r.status, 0, `node-gyp configure for ${os} failed:\n${r.stdout}\n${r.stderr}`);
  // gypd is a Python literal of JSON's shapes.
  const py = runTool('python3', [
    '-c',
    'import ast, json, sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))',
    path.join(dir, 'binding.gypd'),
  ]);
  assert.equal(py.status, 0, py.stderr);
  const target = (JSON.parse(py.stdout) as { targets: (GypTarget & { configurations: Record<string, GypTarget> })[] }).targets[0];
  return { ...target, ...target.configurations.Release, sources: target.sources, libraries: target.libraries };
}

(process.platform === 'linux' ? describe : describe.skip)('one build input (native/build.json)', function () {
  this.timeout(120_000);

  it('node-gyp and CMake compile the same addon sources with the same optimisation, features, warnings and definitions', () => {
    const gyp = gypCommands();
    const cmake = cmakeCommands();
    const cmakeAddon = [...cmake.keys()].filter((f) => !f.startsWith(`native${path.sep}tests${path.sep}`)).sort();
    assert.deepEqual(cmakeAddon, [...gyp.keys()].sort(), 'the same sources in both builds');
    for (const [source, gypArgs] of gyp) {
      const g = effective(gypArgs);
      const c = effective(cmake.get(source) ?? []);
      assert.deepEqual({ ...c, defines: [] }, { ...g, defines: [] }, `${source}: flags differ`);
      assert.deepEqual(
        c.defines,
        g.defines.filter((d) => !NODE_GYP_OWN_DEFINES.has(d)),
        `${source}: definitions differ (beyond node-gyp's own for Node's headers)`,
      );
    }
    // The list is what both follow, not a coincidence of defaults.
    const listed = (JSON.parse(fs.readFileSync(path.join(ROOT, 'native', 'build.json'), 'utf8')) as { cflags: string[] }).cflags;
    const [anySource] = gyp.keys();
    assert.deepEqual(effective(listed), { ...effective(gyp.get(anySource) ?? []), defines: [] });
  });

  it('a .cc file under native/ that the list leaves out fails the node-gyp configuration, naming the file', () => {
    const dir = copyOfTree();
    try {
      const script = path.join(dir, 'scripts', 'build-config.js');
      const listed = runTool(process.execPath, [script, 'sources', 'linux']);
      assert.equal(listed.status, 0, listed.stderr);
      assert.ok(listed.stdout.split('\n').includes('native/core/engine.cc'), listed.stdout);

      fs.writeFileSync(path.join(dir, 'native', 'core', 'unlisted_part.cc'), 'int Unlisted() { return 1; }\n');
      const unlisted = runTool(process.execPath, [script, 'sources', 'linux']);
      assert.equal(unlisted.status, 1);
      assert.match(unlisted.stderr, /native\/core\/unlisted_part\.cc is not in native\/build\.json/);

      fs.rmSync(path.join(dir, 'native', 'core', 'unlisted_part.cc'));
      fs.rmSync(path.join(dir, 'native', 'core', 'engine.cc'));
      const missing = runTool(process.execPath, [script, 'sources', 'linux']);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /native\/core\/engine\.cc is listed but does not exist/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an OS without a backend fails the configuration with a sentence naming the OS', () => {
    const dir = copyOfTree();
    try {
      // No backend built everywhere: solaris has none of its own.
      editList(dir, (list) => {
        delete list.components.backend.all;
      });
      const r = runTool(process.execPath, [path.join(dir, 'scripts', 'build-config.js'), 'sources', 'solaris']);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /no I\/O backend for this OS \(solaris\).*backends for linux, mac, freebsd, openbsd, netbsd, win only/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file may be listed under several OSes, but listed twice for one OS fails the configuration', () => {
    const dir = copyOfTree();
    try {
      const script = path.join(dir, 'scripts', 'build-config.js');
      const libuv = 'native/backends/libuv/libuv_backend.cc';
      for (const os of ['linux', 'mac', 'freebsd']) {
        const r = runTool(process.execPath, [script, 'sources', os]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.split('\n').filter((l) => l === libuv).length, 1, `${os}: ${r.stdout}`);
      }
      // posix applies on macOS too: there it would be compiled twice.
      editList(dir, (list) => {
        list.components.backend.posix = [...list.components.backend.posix, libuv];
      });
      const twice = runTool(process.execPath, [script, 'sources', 'mac']);
      assert.equal(twice.status, 1);
      assert.match(twice.stderr, /native\/backends\/libuv\/libuv_backend\.cc is listed twice/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('binding.gyp on the OSes that build from source elsewhere (gyp resolves it here; no compiler for them runs)', () => {
    let dir: string;
    let list: BuildList;
    before(() => {
      dir = copyOfTree();
      list = editList(dir, () => {});
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const backendSources = (target: GypTarget): string[] => target.sources.filter((s) => s.startsWith('native/backends/'));

    it("macOS: the posix helpers and the portable backend (libuv), no epoll, the list's flags through Xcode", () => {
      const target = gypTarget(dir, 'mac');
      assert.deepEqual(backendSources(target).sort(), [...list.components.backend.posix, 'native/backends/libuv/libuv_backend.cc'].sort());
      assert.deepEqual(target.xcode_settings?.OTHER_CPLUSPLUSFLAGS?.slice(-list.cflags.length), list.cflags);
    });

    it("FreeBSD: the posix helpers and the portable backend (libuv), the list's flags through make", () => {
      const target = gypTarget(dir, 'freebsd');
      assert.deepEqual(backendSources(target).sort(), [...list.components.backend.posix, 'native/backends/libuv/libuv_backend.cc'].sort());
      assert.deepEqual(target.cflags_cc?.slice(-list.cflags.length), list.cflags);
    });

    it('Windows with Visual Studio: the IOCP sources, ws2_32, mswsock and iphlpapi, C++17', () => {
      const target = gypTarget(dir, 'win');
      assert.deepEqual(backendSources(target).sort(), [...list.components.backend.win].sort());
      for (const lib of ['ws2_32.lib', 'mswsock.lib', 'iphlpapi.lib'])
        assert.ok(target.libraries?.includes(lib), `${lib} in ${target.libraries?.join(' ')}`);
      const options = target.msvs_settings?.VCCLCompilerTool?.AdditionalOptions ?? [];
      assert.deepEqual(options.slice(-list.cflags_msvc.length), list.cflags_msvc);
    });
  });

  it('npm install fails loudly when the built addon has an undefined acceptpool:: symbol', () => {
    const dir = tempDir();
    try {
      fs.mkdirSync(path.join(dir, 'scripts'));
      for (const script of ['install.js', 'check-addon.js', 'source-build.js']) {
        fs.copyFileSync(path.join(ROOT, 'scripts', script), path.join(dir, 'scripts', script));
      }
      // The "build": a module that calls into acceptpool:: code it was not linked with.
      const built = path.join(dir, 'build', 'Release', 'acceptpool.node');
      fs.mkdirSync(path.dirname(built), { recursive: true });
      const source = 'namespace acceptpool { int NotBuilt(int); }\nextern "C" int Entry(int x) { return acceptpool::NotBuilt(x); }\n';
      const cc = runTool('g++', ['-shared', '-fPIC', '-x', 'c++', '-', '-o', built], { input: source });
      assert.equal(cc.status, 0, cc.stderr);
      // node-gyp itself succeeds, as it does for such a module.
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.writeFileSync(path.join(dir, 'bin', 'node-gyp'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });

      const env = { ...toolEnv(), PATH: `${path.join(dir, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` };
      const r = runTool(process.execPath, [path.join(dir, 'scripts', 'install.js')], { env });
      assert.equal(r.status, 1, `install.js exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /acceptpool install: .* uses acceptpool:: symbols it does not define/);
      assert.match(r.stderr, /acceptpool::NotBuilt\(int\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the addon this suite loads defines every acceptpool:: symbol it uses', () => {
    const addon = process.env.ACCEPTPOOL_NATIVE ?? path.join(ROOT, 'build', 'Release', 'acceptpool.node');
    const r = runTool(process.execPath, [path.join(ROOT, 'scripts', 'check-addon.js'), addon]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /no undefined acceptpool:: symbols/);
  });
});
