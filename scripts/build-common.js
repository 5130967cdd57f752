// What the CMake builds of the addon and their test runs share. cmake-js
// drives CMakeLists.txt (sources and flags from native/build.json, like
// binding.gyp) where node-gyp does not fit: the ASan + UBSan addon
// (build-asan.js) and the Windows cross-build (build-win.js). Offline:
// package.json's binary.napi_versions makes cmake-js take the Node-API
// headers from the node-api-headers package instead of downloading Node's.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const JOBS = 2;

// Runs a command from the project root; `fail` reports what went wrong and
// does not return.
function run(command, args, fail, options = {}) {
  const shown = [command, ...args].map((a) => (a.startsWith(root + path.sep) ? path.relative(root, a) : a)).join(' ');
  console.log(`$ ${shown}`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) fail(`${shown}: ${r.error.message}`);
  if (r.status !== 0) fail(`${shown} exited with ${r.status === null ? r.signal : r.status}`);
  return r;
}

function have(command) {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

// Configures (every time, so a changed option takes effect) and builds the
// CMake project into `out` through cmake-js, with `defines` as -D options.
function cmakeJsBuild(out, defines, fail) {
  if (!have('cmake')) fail('cmake not found (apt-get install cmake)');
  if (!fs.existsSync(cmakeJs)) fail('cmake-js not installed: run npm install');
  const common = ['--out', out, '--parallel', String(JOBS)];
  const cd = Object.entries(defines).map(([name, value]) => `--CD${name}=${value}`);
  run(process.execPath, [cmakeJs, 'configure', ...common, ...cd], fail);
  run(process.execPath, [cmakeJs, 'build', ...common], fail);
}

// The TypeScript (dist/), which the test runs load.
function compileTypeScript(fail) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) fail('typescript not installed: run npm install');
  run(process.execPath, [tsc, '-p', 'tsconfig.json'], fail);
}

// After a CMake build of the addon: check it (a check-addon.js function),
// then compile the TypeScript the test runs load.
function finishAddonBuild(label, addon, check, fail) {
  if (!fs.existsSync(addon)) fail(`${path.relative(root, addon)} was not built`);
  const result = check(addon);
  if (!result.ok) fail(result.message);
  console.log(result.message);
  compileTypeScript(fail);
  console.log(`${label}: ${path.relative(root, addon)} ok`);
}

// The `fail` of a test run (test-asan.js, test-win.js): a run that cannot
// happen is a failed test in .ci/run's count, never a silent pass.
function failedRun(label) {
  return (message) => {
    console.error(`${label}: ${message}`);
    console.log('0 passing');
    console.log('1 failing');
    process.exit(1);
  };
}

module.exports = { root, run, have, cmakeJsBuild, finishAddonBuild, failedRun };
