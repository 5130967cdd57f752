#!/usr/bin/env node
// `npm install`: build the addon with node-gyp, then compile the TypeScript
// when this is a checkout (a published package ships dist/ already).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

if (process.env.ACCEPTPOOL_SKIP_NATIVE !== '1') run('node-gyp', ['rebuild']);
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (fs.existsSync(path.join(root, 'src')) && fs.existsSync(tsc)) run(process.execPath, [tsc, '-p', 'tsconfig.json']);
