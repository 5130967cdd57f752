#!/usr/bin/env node
// `npm install`: use the prebuilt addon for this platform when the package
// has one that loads here (prebuilds/<platform>-<arch>/, found as the
// runtime finds it, with node-gyp-build); otherwise build it from source with
// node-gyp (from native/build.json, see binding.gyp), after checking that
// the tools are there, and check the result. A checkout always builds from
// source and then compiles the TypeScript (a published package ships dist/).
//
//   npm install acceptpool --build-from-source   skip the prebuild
//   ACCEPTPOOL_SKIP_NATIVE=1                     build no addon (TypeScript only)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { checkLinux } = require('./check-addon');
const { missingForSourceBuild, nodedirArgs } = require('./source-build');

const root = path.resolve(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'acceptpool.node');
const checkout = fs.existsSync(path.join(root, 'src', 'index.ts'));

function fail(message) {
  console.error(`acceptpool install: ${message}`);
  process.exit(1);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status === 0;
}

// The prebuild node-gyp-build would load here (never build/), or null.
function matchingPrebuild() {
  process.env.PREBUILDS_ONLY = '1'; // read by node-gyp-build when it is loaded
  try {
    return require('node-gyp-build').resolve(root);
  } catch {
    return null;
  } finally {
    delete process.env.PREBUILDS_ONLY;
  }
}

// Loads `file` in a fresh node: a prebuild made on a newer glibc than this
// system's fails here, and is then built from source instead.
function loads(file) {
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], { encoding: 'utf8' });
  if (r.status === 0) return true;
  console.log(`acceptpool install: ${path.relative(root, file)} does not load here (${r.stderr.trim().split('\n')[0]})`);
  return false;
}

function buildFromSource() {
  const missing = missingForSourceBuild();
  if (missing.length > 0) {
    fail(`no prebuilt addon for ${process.platform}-${process.arch} loads here, and building it from source ` +
      `needs what this machine lacks:\n  - ${missing.join('\n  - ')}`);
  }
  const nodedir = nodedirArgs();
  if (!run('node-gyp', ['rebuild', ...nodedir])) {
    const headers = nodedir.length > 0 || process.env.npm_config_nodedir
      ? ''
      : ` Node's headers are not beside ${process.execPath} (include/node), so node-gyp downloads them: ` +
        'offline, set npm_config_nodedir to a Node install or source tree that has them.';
    fail(`node-gyp rebuild failed (its output is above).${headers}`);
  }
  // Elsewhere the linker itself refuses undefined symbols.
  if (process.platform === 'linux') {
    const result = checkLinux(addon);
    if (!result.ok) fail(result.message);
    console.log(result.message);
  }
}

if (process.env.ACCEPTPOOL_SKIP_NATIVE !== '1') {
  const prebuild = checkout || process.env.npm_config_build_from_source === 'true' ? null : matchingPrebuild();
  if (prebuild && loads(prebuild)) console.log(`acceptpool install: using the prebuilt ${path.relative(root, prebuild)}`);
  else buildFromSource();
}
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (checkout && fs.existsSync(tsc) && !run(process.execPath, [tsc, '-p', 'tsconfig.json'])) fail('tsc failed');
