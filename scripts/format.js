#!/usr/bin/env node
// Formats the tree, or checks that it is formatted, with two formatters:
//
//   node scripts/format.js          rewrite (npm run format)
//   node scripts/format.js --check  change nothing, fail listing what differs
//                                   (npm run format:check, the CI step `lint`)
//
// The TypeScript in src/ and test/ goes through prettier (.prettierrc.json;
// its version is pinned exactly in package.json), the C++ under native/
// through clang-format (.clang-format). clang-format's output changes between
// major versions, so only the one named below is accepted: the result is the
// same on every machine that runs this.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

// What each formatter owns.
const PRETTIER_GLOBS = ['src/**/*.ts', 'test/**/*.ts'];
const NATIVE_DIR = 'native';
const NATIVE_EXTENSIONS = ['.cc', '.h'];

// Debian bookworm's clang-format (the package .ci/run installs).
const CLANG_FORMAT = 'clang-format';
const CLANG_FORMAT_MAJOR = 14;

// Every C++ file under native/, sorted so that runs list them alike.
function nativeFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...nativeFiles(rel));
    else if (NATIVE_EXTENSIONS.includes(path.extname(entry.name))) out.push(rel);
  }
  return out.sort();
}

function run(command, args) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status === 0;
}

function prettier(check) {
  const cli = require.resolve('prettier/bin/prettier.cjs', { paths: [root] });
  return run(process.execPath, [cli, check ? '--check' : '--write', '--log-level', 'warn', ...PRETTIER_GLOBS]);
}

// null when the right clang-format runs, else what is wrong and the fix.
function clangFormatProblem() {
  const r = spawnSync(CLANG_FORMAT, ['--version'], { encoding: 'utf8' });
  if (r.error) return `${CLANG_FORMAT} not found (${r.error.code}): install it (Debian: apt-get install clang-format)`;
  const major = Number(/version (\d+)\./.exec(r.stdout)?.[1]);
  if (major !== CLANG_FORMAT_MAJOR) {
    return `${CLANG_FORMAT} ${major || '?'} found, ${CLANG_FORMAT_MAJOR} needed (its output differs between versions): ${r.stdout.trim()}`;
  }
  return null;
}

function clangFormat(check) {
  const problem = clangFormatProblem();
  if (problem !== null) {
    console.error(`format: ${problem}`);
    return false;
  }
  const files = nativeFiles(NATIVE_DIR);
  if (!check) return run(CLANG_FORMAT, ['-i', ...files]);
  const r = spawnSync(CLANG_FORMAT, ['--dry-run', '--Werror', ...files], { cwd: root, encoding: 'utf8' });
  // One line per place that differs, without the quoted source around it.
  const places = r.stderr.split('\n').filter((line) => /^\S+:\d+:\d+: error:/.test(line));
  for (const line of places) console.error(`[clang-format] ${line.replace(/: error: .*$/, '')}`);
  if (r.status !== 0 && places.length === 0) console.error(r.stderr.trim());
  return r.status === 0;
}

function main(argv) {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: node scripts/format.js [--check] (unknown: ${unknown.join(' ')})`);
    process.exit(2);
  }
  const check = argv.includes('--check');
  // Both run even when the first fails, so one run lists every difference.
  const ts = prettier(check);
  const native = clangFormat(check);
  if (check && !(ts && native)) {
    console.error('format: not formatted (npm run format rewrites it)');
  }
  process.exit(ts && native ? 0 : 1);
}

main(process.argv.slice(2));
