// What a build of the addon from source (node-gyp) needs, checked before it
// starts, so that a machine without them gets one sentence naming each
// missing tool instead of node-gyp's traceback: Python 3 (gyp), make and a
// C++17 compiler (on Windows, node-gyp finds Visual Studio itself and says
// so when it cannot), and Node's headers (node.h and uv.h: the addon
// includes <uv.h>, which the node-api-headers package does not have).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

// Runs `command --version`; true when it ran and succeeded.
function runs(command) {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore', shell: process.platform === 'win32' });
  return !r.error && r.status === 0;
}

// The first of `candidates` (leading words of a command, e.g. "$CXX") that runs.
function firstThatRuns(candidates) {
  return candidates.filter(Boolean).find((c) => runs(c.split(' ')[0]));
}

// node-gyp looks for Python where npm's config, then $PYTHON, then PATH say.
function python(env) {
  return firstThatRuns([env.npm_config_python, env.PYTHON, 'python3', 'python']);
}

// node-gyp runs GNU make: `gmake` on the BSDs, `make` elsewhere, $MAKE first.
function make(env) {
  const bsd = ['freebsd', 'openbsd', 'netbsd'].includes(process.platform);
  return firstThatRuns([env.MAKE, bsd ? 'gmake' : 'make']);
}

function compiler(env) {
  return firstThatRuns([env.CXX, 'c++', 'g++', 'clang++']);
}

// The prefix whose include/node has Node's headers for this node binary, or
// null: distribution packages and official tarballs have them beside the
// binary (<prefix>/bin/node, <prefix>/include/node).
function nodeHeadersBeside(execPath = process.execPath) {
  const prefix = path.resolve(path.dirname(execPath), '..');
  const dir = path.join(prefix, 'include', 'node');
  return fs.existsSync(path.join(dir, 'node_api.h')) && fs.existsSync(path.join(dir, 'uv.h')) ? prefix : null;
}

// What is missing for a source build, one sentence each; empty when nothing is.
function missingForSourceBuild(env = process.env) {
  const missing = [];
  if (!python(env)) missing.push('Python 3 (node-gyp runs gyp with it): install python3, or set npm_config_python');
  if (process.platform !== 'win32') {
    if (!make(env)) missing.push(`GNU make: install ${process.platform === 'linux' ? 'make' : 'gmake'}`);
    if (!compiler(env)) missing.push('a C++17 compiler (c++, g++ or clang++ on PATH, or $CXX): install g++ or clang');
  }
  return missing;
}

// node-gyp's arguments for Node's headers: the ones beside this node unless
// npm's config names a directory; with neither, node-gyp downloads them.
function nodedirArgs(env = process.env) {
  if (env.npm_config_nodedir) return [];
  const prefix = nodeHeadersBeside();
  return prefix ? [`--nodedir=${prefix}`] : [];
}

module.exports = { missingForSourceBuild, nodedirArgs, nodeHeadersBeside };
