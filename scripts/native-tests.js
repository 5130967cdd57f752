#!/usr/bin/env node
// Configures, builds and runs the native C++ unit tests (ctest), offline.
//
//   node scripts/native-tests.js                     plain build, every test
//   node scripts/native-tests.js --sanitize=address  ASan + UBSan, every test
//   node scripts/native-tests.js --sanitize=thread   TSan, the tests labelled "thread"
//
// Build directories: build/native-tests, build/native-tests-asan,
// build/native-tests-tsan. Each test binary counts its own test cases and
// appends "<binary> passed=N failed=M" to the file named by
// ACCEPTPOOL_TEST_REPORT; a binary that crashed, timed out or tripped a
// sanitizer after reporting counts as one more failure. The last line printed
// is always "native: N passed, M failed"; the exit code is non-zero on any
// failure.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function usage(message) {
  if (message) console.error(message);
  console.error('usage: node scripts/native-tests.js [--sanitize=address|thread] [--jobs=N]');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { sanitize: '', jobs: 2 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let match;
    if ((match = /^--sanitize(?:=(.*))?$/.exec(arg))) {
      options.sanitize = match[1] !== undefined ? match[1] : argv[++i];
    } else if ((match = /^--jobs(?:=(.*))?$/.exec(arg))) {
      options.jobs = Number(match[1] !== undefined ? match[1] : argv[++i]);
    } else if (arg === '-h' || arg === '--help') {
      usage();
    } else {
      usage(`unknown argument: ${arg}`);
    }
  }
  if (!['', 'none', 'address', 'thread'].includes(options.sanitize)) {
    usage(`--sanitize must be address or thread, not ${options.sanitize}`);
  }
  if (options.sanitize === 'none') options.sanitize = '';
  if (!Number.isInteger(options.jobs) || options.jobs < 1) usage('--jobs must be a positive integer');
  return options;
}

function finish(passed, failed, extraFailure) {
  console.log(`native: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || passed === 0 || extraFailure ? 1 : 0);
}

function run(command, args, env) {
  console.log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: env || process.env });
  if (result.error) {
    console.error(`${command}: ${result.error.message}`);
    return 127;
  }
  return result.status === null ? 128 : result.status;
}

function haveCommand(command) {
  const result = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const suffix = { '': '', address: '-asan', thread: '-tsan' }[options.sanitize];
  const buildDir = path.join(root, 'build', `native-tests${suffix}`);

  if (!haveCommand('cmake') || !haveCommand('ctest')) {
    console.error('cmake and ctest are needed (apt-get install cmake)');
    finish(0, 1, true);
  }

  const configure = [
    '-S', root,
    '-B', buildDir,
    '-DACCEPTPOOL_BUILD_ADDON=OFF',
    '-DACCEPTPOOL_BUILD_TESTS=ON',
    `-DACCEPTPOOL_SANITIZE=${options.sanitize}`,
  ];
  // Ninja when there is one and the directory is new (a directory keeps the
  // generator it was made with).
  if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt')) && haveCommand('ninja')) {
    configure.push('-G', 'Ninja');
  }
  if (run('cmake', configure) !== 0) {
    console.error('native tests: configure failed');
    finish(0, 1, true);
  }
  if (run('cmake', ['--build', buildDir, `-j${options.jobs}`]) !== 0) {
    console.error('native tests: build failed');
    finish(0, 1, true);
  }

  const report = path.join(buildDir, 'test-report.txt');
  const lastFailed = path.join(buildDir, 'Testing', 'Temporary', 'LastTestsFailed.log');
  fs.rmSync(report, { force: true });
  fs.rmSync(lastFailed, { force: true });

  const env = { ...process.env, ACCEPTPOOL_TEST_REPORT: report };
  if (options.sanitize === 'address') {
    env.ASAN_OPTIONS = env.ASAN_OPTIONS || 'detect_leaks=1:strict_string_checks=1:check_initialization_order=1';
    env.UBSAN_OPTIONS = env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1';
  } else if (options.sanitize === 'thread') {
    env.TSAN_OPTIONS = env.TSAN_OPTIONS || 'halt_on_error=1:second_deadlock_stack=1';
  }
  const ctestArgs = ['--test-dir', buildDir, '--output-on-failure'];
  // Under ThreadSanitizer only what runs threads is worth the slowdown.
  if (options.sanitize === 'thread') ctestArgs.push('-L', 'thread');
  const ctestStatus = run('ctest', ctestArgs, env);

  // Test cases counted by the binaries themselves.
  const counts = new Map();
  if (fs.existsSync(report)) {
    for (const line of fs.readFileSync(report, 'utf8').split('\n')) {
      const match = /^(\S+) passed=(\d+) failed=(\d+)$/.exec(line.trim());
      if (match) counts.set(match[1], { passed: Number(match[2]), failed: Number(match[3]) });
    }
  }
  let passed = 0;
  let failed = 0;
  for (const { passed: p, failed: f } of counts.values()) {
    passed += p;
    failed += f;
  }
  // Executables ctest saw fail without a failed case of their own: crashes,
  // timeouts, sanitizer reports at exit. Each counts once.
  const failedNames = fs.existsSync(lastFailed)
    ? fs.readFileSync(lastFailed, 'utf8').split('\n').map((l) => l.replace(/^\d+:/, '').trim()).filter(Boolean)
    : [];
  for (const name of failedNames) {
    const c = counts.get(name);
    if (!c || c.failed === 0) {
      console.error(`native tests: ${name} failed outside its test cases (crash, timeout or sanitizer report)`);
      failed += 1;
    }
  }
  for (const [name, c] of counts) {
    console.log(`  ${name}: ${c.passed} passed, ${c.failed} failed`);
  }
  finish(passed, failed, ctestStatus !== 0);
}

main();
