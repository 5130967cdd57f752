#!/usr/bin/env node
// `npm pack` / `npm publish`: builds what the tarball ships and a clean
// checkout lacks: dist/ compiled afresh (no output of a source that is gone)
// and every prebuilt addon (scripts/prebuild.js).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { root, run } = require('./build-common');

function fail(message) {
  console.error(`prepack: ${message}`);
  process.exit(1);
}

fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], fail);
run(process.execPath, [path.join(__dirname, 'prebuild.js')], fail);
