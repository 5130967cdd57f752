#!/usr/bin/env node
// Checks a built acceptpool.node before anything loads it.
//
//   node scripts/check-addon.js [--nm <tool>] <file.node>  Linux: no undefined acceptpool:: symbol
//   node scripts/check-addon.js --windows <file.node> Windows: imports node.exe and system DLLs only
//
// Linux: `-shared` links a module whose own symbols are missing (a source
// left out of the build), and Node loads addons with RTLD_LAZY, so a missing
// function would surface only when first called, as a crash. `nm -C -D
// --undefined-only` lists them now (dynamic symbols, which a stripped module
// keeps; a cross-built one is read with its target's nm). Windows: the C++
// runtime is linked in statically, so the module may import node.exe and
// Windows' own DLLs only.
'use strict';

const { spawnSync } = require('node:child_process');

// DLLs the Windows addon may import: the host executable and system libraries.
const ALLOWED_IMPORTS = new Set(['node.exe', 'kernel32.dll', 'ws2_32.dll', 'iphlpapi.dll', 'msvcrt.dll']);

// A check's verdict: `message` says what was found either way.
const passed = (message) => ({ ok: true, message });
const failed = (message) => ({ ok: false, message });

// A tool's output, or the failed verdict that it could not run.
function tool(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error) return { problem: failed(`${command}: ${r.error.message} (install binutils)`) };
  if (r.status !== 0) return { problem: failed(`${command} ${args.join(' ')} failed: ${r.stderr.trim()}`) };
  return { stdout: r.stdout };
}

// Passes when `file` defines every acceptpool:: symbol it uses.
function checkLinux(file, nm = 'nm') {
  const { stdout, problem } = tool(nm, ['-C', '-D', '--undefined-only', file]);
  if (problem) return problem;
  const missing = stdout
    .split('\n')
    .map((line) => line.trim().replace(/^[Uw] +/, ''))
    .filter((symbol) => /\bacceptpool::/.test(symbol));
  if (missing.length > 0) {
    return failed(`${file} uses acceptpool:: symbols it does not define (a source missing from native/build.json?):\n  ` +
      missing.join('\n  '));
  }
  return passed(`${file}: no undefined acceptpool:: symbols`);
}

// Dotted versions compared number by number.
function compareVersions(a, b) {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < Math.max(x.length, y.length); i += 1) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
  }
  return 0;
}

// Passes when the newest symbol version `file` needs of each library is at
// most `limits`' (e.g. { GLIBC: '2.34', GLIBCXX: '3.4.30' }): the oldest
// systems a prebuild loads on.
function checkLinuxVersions(file, limits, objdump = 'objdump') {
  const { stdout, problem } = tool(objdump, ['-T', file]);
  if (problem) return problem;
  const newest = {};
  for (const [, lib, version] of stdout.matchAll(/\(([A-Z]+)_([0-9.]+)\)/g)) {
    if (!newest[lib] || compareVersions(version, newest[lib]) > 0) newest[lib] = version;
  }
  const over = Object.entries(newest).filter(([lib, v]) => limits[lib] && compareVersions(v, limits[lib]) > 0);
  if (over.length > 0) {
    return failed(`${file} needs ${over.map(([lib, v]) => `${lib}_${v}`).join(', ')}, newer than ` +
      `${over.map(([lib]) => `${lib}_${limits[lib]}`).join(', ')} (the oldest systems the README promises)`);
  }
  return passed(`${file} needs ${Object.entries(newest).map(([lib, v]) => `${lib}_${v}`).join(', ')} at most`);
}

// Passes when `file` imports node.exe and allowed system DLLs only.
function checkWindows(file) {
  const { stdout, problem } = tool('x86_64-w64-mingw32-objdump', ['-p', file]);
  if (problem) return problem;
  const imports = [...new Set([...stdout.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1].toLowerCase()))];
  const unexpected = imports.filter((dll) => !ALLOWED_IMPORTS.has(dll));
  if (unexpected.length > 0) return failed(`${file} imports ${unexpected.join(', ')} (the runtime must be static)`);
  if (!imports.includes('node.exe')) return failed(`${file} does not import node.exe`);
  return passed(`${file} imports: ${imports.join(', ')}`);
}

module.exports = { checkLinux, checkLinuxVersions, checkWindows };

if (require.main === module) {
  const args = process.argv.slice(2);
  const windows = args[0] === '--windows';
  const nm = args[0] === '--nm' ? args[1] : undefined;
  const file = args[windows ? 1 : nm ? 2 : 0];
  if (!file) {
    console.error('usage: node scripts/check-addon.js [--windows | --nm <tool>] <file.node>');
    process.exit(2);
  }
  const result = windows ? checkWindows(file) : checkLinux(file, nm);
  if (!result.ok) {
    console.error(`check-addon: ${result.message}`);
    process.exit(1);
  }
  console.log(result.message);
}
