#!/usr/bin/env node
// Cross-builds the Windows addon (build-win/addon/acceptpool.node) and the
// native unit tests (build-win/addon/*_test.exe) with mingw-w64, and checks
// what the addon imports: node.exe and Windows' own DLLs only (the C++
// runtime is linked in statically). Also compiles the TypeScript (dist/),
// which the Windows test run loads.
//
//   npm run build:win
//
// Needs: cmake, x86_64-w64-mingw32-g++-posix and -dlltool (Debian:
// g++-mingw-w64-x86-64-posix), and `npm install` done.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
// Outside build/, which node-gyp rebuild wipes.
const buildDir = path.join(root, 'build-win', 'addon');
const addon = path.join(buildDir, 'acceptpool.node');

// DLLs the addon may import: the host executable and system libraries.
const ALLOWED_IMPORTS = new Set(['node.exe', 'kernel32.dll', 'ws2_32.dll', 'iphlpapi.dll', 'msvcrt.dll']);

// How a fatal problem is reported; test-win.js replaces it with one that
// also prints a failed-test count.
let fail = (message) => {
  console.error(`build:win: ${message}`);
  process.exit(1);
};

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) fail(`${command}: ${r.error.message}`);
  if (r.status !== 0) fail(`${command} exited with ${r.status}`);
  return r;
}

function have(command) {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function build() {
  for (const tool of ['cmake', 'x86_64-w64-mingw32-g++-posix', 'x86_64-w64-mingw32-dlltool', 'x86_64-w64-mingw32-objdump']) {
    if (!have(tool)) fail(`${tool} not found (apt-get install cmake g++-mingw-w64-x86-64-posix)`);
  }

  run('cmake', ['-S', '.', '-B', buildDir, '-DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake',
    '-DACCEPTPOOL_BUILD_ADDON=ON', '-DACCEPTPOOL_BUILD_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release']);
  run('cmake', ['--build', buildDir, '-j2']);
  if (!fs.existsSync(addon)) fail(`${addon} was not built`);

  const dump = spawnSync('x86_64-w64-mingw32-objdump', ['-p', addon], { encoding: 'utf8' });
  if (dump.status !== 0) fail('objdump failed');
  const imports = [...new Set([...dump.stdout.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1].toLowerCase()))];
  const unexpected = imports.filter((dll) => !ALLOWED_IMPORTS.has(dll));
  console.log(`acceptpool.node imports: ${imports.join(', ')}`);
  if (unexpected.length > 0) fail(`unexpected imports (the runtime must be static): ${unexpected.join(', ')}`);
  if (!imports.includes('node.exe')) fail('acceptpool.node does not import node.exe');

  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) fail('typescript not installed: run npm install');
  run(process.execPath, [tsc, '-p', 'tsconfig.json']);
  console.log(`build:win: ${path.relative(root, addon)} ok`);
  return addon;
}

module.exports = { build, buildDir, run, root, setFail: (fn) => { fail = fn; } };

if (require.main === module) build();
