#!/usr/bin/env node
// Builds the prebuilt addons the npm package ships, in prebuildify's layout
// (prebuilds/<platform>-<arch>/acceptpool[.glibc].node), which
// node-gyp-build loads at run time and scripts/install.js looks for. One
// Node-API binary per platform serves every Node version from 20 on.
//
//   npm run prebuilds [-- linux-x64 linux-arm64 win32-x64]   (default: all)
//
// linux-x64 and linux-arm64: prebuildify runs node-gyp, the from-source
// build users get (binding.gyp), in a copy of the build inputs under
// build-prebuild/<target> (node-gyp rebuilds in place, and build/ is the
// checkout's own addon); linux-arm64 with Debian's g++-aarch64-linux-gnu.
// win32-x64: the mingw-w64 cross-build (scripts/build-win.js). Each is
// stripped and checked (scripts/check-addon.js). `npm pack` runs this
// (prepack).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { root, run, have } = require('./build-common');
const { checkLinux, checkLinuxVersions, checkWindows } = require('./check-addon');
const { nodeHeadersBeside } = require('./source-build');

const prebuildsDir = path.join(root, 'prebuilds');
const stagingRoot = path.join(root, 'build-prebuild');
const NAME = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name;

// What a from-source build reads (binding.gyp's inputs); native/tests is CMake's alone.
const BUILD_INPUTS = ['package.json', 'binding.gyp', 'native', 'scripts/build-config.js'];

// The newest glibc and libstdc++ (GCC 12's) symbol versions a Linux
// prebuild may need: the README's promise of where it loads. A newer
// toolchain that raises them fails here instead of on users' systems
// (where the install would fall back to a source build).
const LINUX_LIMITS = { GLIBC: '2.34', GLIBCXX: '3.4.30' };

// Every prebuild the package ships. `tools` are the cross tools the build
// needs (Debian package in `apt`).
const TARGETS = {
  'linux-x64': { file: `${NAME}.glibc.node`, build: () => buildWithPrebuildify('linux-x64', 'x64', {}) },
  'linux-arm64': {
    file: `${NAME}.glibc.node`,
    build: () => buildWithPrebuildify('linux-arm64', 'arm64', {
      CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', STRIP: 'aarch64-linux-gnu-strip', NM: 'aarch64-linux-gnu-nm',
      OBJDUMP: 'aarch64-linux-gnu-objdump',
      apt: 'g++-aarch64-linux-gnu',
    }),
  },
  'win32-x64': { file: `${NAME}.node`, build: buildWindows },
};

function fail(message) {
  console.error(`prebuilds: ${message}`);
  process.exit(1);
}

function prebuildPath(target) {
  return path.join(prebuildsDir, target, TARGETS[target].file);
}

function stage(target) {
  const dir = path.join(stagingRoot, target);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const input of BUILD_INPUTS) {
    fs.cpSync(path.join(root, input), path.join(dir, input), {
      recursive: true,
      filter: (src) => path.relative(root, src) !== path.join('native', 'tests'),
    });
  }
  return dir;
}

// node-gyp is npm's own (npm sets npm_config_node_gyp for the scripts it runs).
function nodeGyp() {
  const bundled = process.env.npm_config_node_gyp;
  if (!bundled || !fs.existsSync(bundled)) fail('run this through npm (npm run prebuilds), which provides node-gyp');
  return bundled;
}

function buildWithPrebuildify(target, arch, cross) {
  for (const tool of [cross.CXX, cross.STRIP].filter(Boolean)) {
    if (!have(tool)) fail(`${tool} not found (apt-get install ${cross.apt})`);
  }
  const dir = stage(target);
  const env = { ...process.env };
  if (cross.CC) Object.assign(env, { CC: cross.CC, CXX: cross.CXX });
  // Offline: Node's own headers, never a download.
  if (!env.npm_config_nodedir) {
    const prefix = nodeHeadersBeside();
    if (!prefix) fail(`Node's headers are not beside ${process.execPath}: set npm_config_nodedir`);
    env.npm_config_nodedir = prefix;
  }
  const bin = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
  run(process.execPath, [bin, '--napi', '--tag-libc', '--strip', `--strip-bin=${cross.STRIP || 'strip'}`,
    `--arch=${arch}`, `--node-gyp=${nodeGyp()}`, `--out=${root}`, dir], fail, { env });
  const symbols = checkLinux(prebuildPath(target), cross.NM || 'nm');
  if (!symbols.ok) return symbols;
  const versions = checkLinuxVersions(prebuildPath(target), LINUX_LIMITS, cross.OBJDUMP || 'objdump');
  if (versions.ok) console.log(versions.message);
  return versions;
}

function buildWindows() {
  const { build } = require('./build-win');
  const built = build();
  const file = prebuildPath('win32-x64');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  run('x86_64-w64-mingw32-strip', ['--strip-unneeded', '-o', file, built], fail);
  return checkWindows(file);
}

function main(args) {
  const targets = args.length > 0 ? args : Object.keys(TARGETS);
  for (const target of targets) {
    if (!TARGETS[target]) fail(`unknown target ${target} (${Object.keys(TARGETS).join(', ')})`);
  }
  for (const target of targets) {
    const file = prebuildPath(target);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    const result = TARGETS[target].build();
    if (!result.ok) fail(result.message);
    const extra = fs.readdirSync(path.dirname(file)).filter((f) => f !== path.basename(file));
    if (extra.length > 0) fail(`${path.dirname(file)} holds ${extra.join(', ')} beside ${path.basename(file)}`);
    console.log(`prebuilds: ${path.relative(root, file)} (${fs.statSync(file).size} bytes) ok`);
  }
  fs.rmSync(stagingRoot, { recursive: true, force: true });
}

module.exports = { TARGETS, prebuildPath };

if (require.main === module) main(process.argv.slice(2));
