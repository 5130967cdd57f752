#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UBSan through cmake-js:
// build/addon-asan/Release/acceptpool.node, from the sources and flags of
// the shipped addon (native/build.json) plus the sanitizers, -g and
// bounds-checked containers (CMakeLists.txt, ACCEPTPOOL_SANITIZE=address),
// and beside it the sanitizer canary (native/tests/sanitizer_canary.cc).
// Also compiles the TypeScript. npm run test:asan runs mocha on it.
//
//   npm run build:asan
//
// Linux with GCC (libasan8, libubsan1) and cmake; `npm install` done.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { root, cmakeJsBuild, finishAddonBuild } = require('./build-common');
const { checkLinux } = require('./check-addon');

const buildDir = path.join(root, 'build', 'addon-asan');
// cmake-js puts modules in <out>/<config>.
const outputDir = path.join(buildDir, 'Release');
const addon = path.join(outputDir, 'acceptpool.node');
const canary = path.join(outputDir, 'acceptpool_sanitizer_canary.node');

let fail = (message) => {
  console.error(`build:asan: ${message}`);
  process.exit(1);
};

// The compiler CMake chose, which knows where its sanitizer runtimes are.
function compiler() {
  const cache = fs.readFileSync(path.join(buildDir, 'CMakeCache.txt'), 'utf8');
  const match = /^CMAKE_CXX_COMPILER:[A-Z]+=(.+)$/m.exec(cache);
  if (!match) fail('CMAKE_CXX_COMPILER not in build/addon-asan/CMakeCache.txt');
  return match[1].trim();
}

function build() {
  if (process.platform !== 'linux') fail(`the sanitizer build is for Linux, not ${process.platform}`);
  cmakeJsBuild(buildDir, { ACCEPTPOOL_SANITIZE: 'address' }, fail);
  if (!fs.existsSync(canary)) fail(`${path.relative(root, canary)} was not built`);
  finishAddonBuild('build:asan', addon, checkLinux, fail);
  return { addon, canary, compiler: compiler() };
}

module.exports = { build, setFail: (fn) => { fail = fn; } };

if (require.main === module) build();
