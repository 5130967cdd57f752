#!/usr/bin/env node
// `npm install`: build the addon with node-gyp (from native/build.json, see
// binding.gyp), check it, then compile the TypeScript when this is a
// checkout (a published package ships dist/ already).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { checkLinux } = require('./check-addon');

const root = path.resolve(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'acceptpool.node');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

if (process.env.ACCEPTPOOL_SKIP_NATIVE !== '1') {
  run('node-gyp', ['rebuild']);
  // Elsewhere the linker itself refuses undefined symbols.
  if (process.platform === 'linux') {
    const result = checkLinux(addon);
    if (!result.ok) {
      console.error(`acceptpool install: ${result.message}`);
      process.exit(1);
    }
    console.log(result.message);
  }
}
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (fs.existsSync(path.join(root, 'src')) && fs.existsSync(tsc)) run(process.execPath, [tsc, '-p', 'tsconfig.json']);
