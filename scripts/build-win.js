#!/usr/bin/env node
// Cross-builds the Windows addon (build-win/addon/acceptpool.node) and the
// native unit tests (build-win/addon/*_test.exe) with mingw-w64, through
// cmake-js like every CMake build of the addon (same sources and flags as
// binding.gyp, from native/build.json), and checks what the addon imports:
// node.exe and Windows' own DLLs only (the C++ runtime is linked in
// statically). Also compiles the TypeScript (dist/), which the Windows test
// run loads.
//
//   npm run build:win
//
// Needs: cmake, x86_64-w64-mingw32-g++-posix and -dlltool (Debian:
// g++-mingw-w64-x86-64-posix), and `npm install` done.
'use strict';

const path = require('node:path');

const { root, run, have, cmakeJsBuild, finishAddonBuild } = require('./build-common');
const { checkWindows } = require('./check-addon');

// Outside build/, which node-gyp rebuild wipes.
const buildDir = path.join(root, 'build-win', 'addon');
// A Windows DLL is a runtime artifact: it lands in the build directory
// itself, beside the test executables.
const addon = path.join(buildDir, 'acceptpool.node');

// How a fatal problem is reported; test-win.js replaces it with one that
// also prints a failed-test count.
let fail = (message) => {
  console.error(`build:win: ${message}`);
  process.exit(1);
};

function build() {
  for (const tool of ['x86_64-w64-mingw32-g++-posix', 'x86_64-w64-mingw32-dlltool', 'x86_64-w64-mingw32-objdump']) {
    if (!have(tool)) fail(`${tool} not found (apt-get install g++-mingw-w64-x86-64-posix)`);
  }
  cmakeJsBuild(buildDir, {
    CMAKE_TOOLCHAIN_FILE: path.join(root, 'cmake', 'mingw-w64-x86_64.cmake'),
    ACCEPTPOOL_BUILD_TESTS: 'ON',
  }, fail);
  finishAddonBuild('build:win', addon, checkWindows, fail);
  return addon;
}

module.exports = {
  build,
  buildDir,
  run: (command, args, options) => run(command, args, fail, options),
  root,
  setFail: (fn) => { fail = fn; },
};

if (require.main === module) build();
