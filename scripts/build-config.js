#!/usr/bin/env node
// Reads native/build.json, the one list of the addon's sources and flags,
// for binding.gyp (which calls it with <!@(...)) and for scripts. CMake reads
// the same file itself (CMakeLists.txt, string(JSON)).
//
//   node scripts/build-config.js sources <os>    every addon source for <os> (gyp's OS name)
//   node scripts/build-config.js cflags [msvc]   compile flags (GCC/Clang's, or Visual Studio's)
//   node scripts/build-config.js defines <os>    preprocessor definitions
//   node scripts/build-config.js libraries <os>  system libraries to link
//   node scripts/build-config.js check           the list and native/ agree
//
// `sources` checks first, so a .cc file missing from the list fails the
// node-gyp build instead of leaving the addon without it. An OS without a
// backend (none under 'all', none of its own) fails with a sentence naming it.
// Groups are keyed 'all', 'posix' (every OS but Windows) or an OS name.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const configFile = path.join(root, 'native', 'build.json');
// C++ tests are CMake's alone; they are not part of the addon.
const UNLISTED_DIRS = ['native/tests/'];

class BuildConfigError extends Error {}

function load(file = configFile) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// Groups keyed by gyp's OS names; 'posix' is every one of them but 'win'.
const ALL = 'all';
const POSIX = 'posix';
const WINDOWS = 'win';

// Entries of a { all: [...], posix: [...], <os>: [...] } group that apply on `os`.
function forOs(group, os) {
  const keys = [ALL, ...(os === WINDOWS ? [] : [POSIX]), os];
  return keys.flatMap((key) => (group && group[key]) || []);
}

function napiVersion() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return Math.max(...pkg.binary.napi_versions);
}

// The OSes with a backend of their own (posix helpers are no backend).
function backendOses(config) {
  return Object.keys(config.components.backend || {}).filter((os) => os !== ALL && os !== POSIX);
}

// An OS has a backend when one is built everywhere ('all') or for it.
function hasBackend(config, os) {
  const backend = config.components.backend || {};
  return (backend[ALL] || []).length > 0 || (backend[os] || []).length > 0;
}

function sources(config, os) {
  if (!hasBackend(config, os)) {
    throw new BuildConfigError(
      `acceptpool has no I/O backend for this OS (${os}): ${path.relative(root, configFile)} has ` +
        `backends for ${backendOses(config).join(', ')} only`);
  }
  return Object.values(config.components).flatMap((component) => forOs(component, os));
}

function defines(config, os) {
  return [`NAPI_VERSION=${napiVersion()}`, ...forOs(config.defines, os)];
}

// gyp hands `libraries` to the linker as given: -lname for make, name.lib for MSVC.
function libraries(config, os) {
  return forOs(config.libraries, os).map((lib) => (os === 'win' ? `${lib}.lib` : `-l${lib}`));
}

function listedFiles(config) {
  return Object.values(config.components).flatMap((component) => Object.values(component).flat());
}

function nativeSourcesOnDisk(dir) {
  const found = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) {
        if (!UNLISTED_DIRS.includes(`${child}/`)) walk(child);
      } else if (entry.name.endsWith('.cc')) {
        found.push(child);
      }
    }
  };
  walk('native');
  return found;
}

// Every OS name a group of the list is keyed by, and Linux and Windows.
function listedOses(config) {
  const groups = [config.defines, config.libraries, ...Object.values(config.components)];
  const keys = groups.flatMap((group) => Object.keys(group || {}));
  return [...new Set(['linux', WINDOWS, ...keys])].filter((os) => os !== ALL && os !== POSIX);
}

// Problems between the list and the tree under `dir`: a listed file that is
// missing or listed twice for one OS (a file built on several OSes is listed
// once under each), a .cc file that is not listed.
function check(config, dir = root) {
  const problems = [];
  const listed = listedFiles(config);
  const seen = new Set(listed);
  for (const file of seen) {
    if (!fs.existsSync(path.join(dir, file))) problems.push(`${file} is listed but does not exist`);
  }
  const twice = new Set();
  for (const os of listedOses(config)) {
    const forThisOs = Object.values(config.components).flatMap((component) => forOs(component, os));
    forThisOs.filter((file, i) => forThisOs.indexOf(file) !== i).forEach((file) => twice.add(file));
  }
  for (const file of twice) problems.push(`${file} is listed twice`);
  for (const file of nativeSourcesOnDisk(dir)) {
    if (!seen.has(file)) problems.push(`${file} is not in native/build.json: add it to its component`);
  }
  return problems;
}

function main(argv) {
  const [command, os] = argv;
  const config = load();
  const needOs = () => {
    if (!os) throw new BuildConfigError(`${command} needs an OS name (linux, win, ...)`);
    return os;
  };
  switch (command) {
    case 'sources': {
      const problems = check(config);
      if (problems.length > 0) throw new BuildConfigError(problems.join('\n'));
      return sources(config, needOs());
    }
    case 'cflags':
      return os === 'msvc' ? config.cflags_msvc : config.cflags;
    case 'defines':
      return defines(config, needOs());
    case 'libraries':
      return libraries(config, needOs());
    case 'check': {
      const problems = check(config);
      if (problems.length > 0) throw new BuildConfigError(problems.join('\n'));
      return [`native/build.json: ${new Set(listedFiles(config)).size} sources, all present, none unlisted`];
    }
    default:
      throw new BuildConfigError('usage: node scripts/build-config.js sources|defines|libraries <os> | cflags [msvc] | check');
  }
}

module.exports = { load, sources, defines, libraries, check, BuildConfigError };

if (require.main === module) {
  try {
    for (const line of main(process.argv.slice(2))) console.log(line);
  } catch (e) {
    if (!(e instanceof BuildConfigError)) throw e;
    console.error(`build-config: ${e.message}`);
    process.exit(1);
  }
}
