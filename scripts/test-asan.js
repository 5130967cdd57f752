#!/usr/bin/env node
// Runs the whole mocha suite against the ASan + UBSan addon (build-asan.js)
// in the stock node, through the facade's ACCEPTPOOL_NATIVE override; child
// processes the tests start inherit the same addon and environment.
//
//   npm run test:asan [-- mocha args, e.g. --grep generation]
//
// Node itself is not instrumented, so the sanitizer runtimes the addon links
// are preloaded (ASan's first: it must come before any other library), and:
//   detect_leaks=0     LeakSanitizer would report every allocation node
//                      keeps until exit, none of them the addon's
//   abort_on_error=1   a report ends the process by SIGABRT, which no test
//                      can mistake for a child's ordinary exit code
//   halt_on_error=1    UBSan stops at its first report (the build also has
//                      -fno-sanitize-recover=all)
// Before mocha, the sanitizer canary proves that this environment turns a
// heap overflow and a signed overflow into a failed run. ASAN_OPTIONS and
// UBSAN_OPTIONS set by the caller are appended (later options win).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { build, setFail } = require('./build-asan');
const { root, failedRun } = require('./build-common');

// The whole run; the suite takes a few minutes under ASan.
const RUN_LIMIT_MS = 20 * 60 * 1000;

const fail = failedRun('test:asan');
setFail(fail);

function runtime(compiler, name) {
  const r = spawnSync(compiler, [`-print-file-name=${name}`], { encoding: 'utf8' });
  const file = r.status === 0 ? r.stdout.trim() : '';
  // Without the library the compiler prints the bare name back.
  if (!path.isAbsolute(file) || !fs.existsSync(file)) fail(`${compiler} has no ${name} (apt-get install libasan8 libubsan1)`);
  return fs.realpathSync(file);
}

function options(ours, theirs) {
  return [ours, theirs].filter(Boolean).join(':');
}

function sanitizerEnv(compiler) {
  return {
    ...process.env,
    LD_PRELOAD: [runtime(compiler, 'libasan.so'), runtime(compiler, 'libubsan.so'), process.env.LD_PRELOAD]
      .filter(Boolean).join(':'),
    ASAN_OPTIONS: options('detect_leaks=0:abort_on_error=1', process.env.ASAN_OPTIONS),
    UBSAN_OPTIONS: options('print_stacktrace=1:halt_on_error=1:abort_on_error=1', process.env.UBSAN_OPTIONS),
  };
}

// Each case: code run on the canary, and the report it must die with (none: it must return).
const CANARY_CASES = [
  { what: 'in-range calls', code: 'c.heapWrite(7); if (c.signedAdd(0) !== 2147483647) process.exit(3);', report: null },
  { what: 'a heap overflow', code: 'c.heapWrite(8);', report: /AddressSanitizer: heap-buffer-overflow/ },
  { what: 'a signed overflow', code: 'c.signedAdd(1);', report: /runtime error: signed integer overflow/ },
];

function checkCanary(canary, env) {
  for (const { what, code, report } of CANARY_CASES) {
    const script = `const c = require(${JSON.stringify(canary)}); ${code}`;
    const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 60_000 });
    const died = r.status !== 0;
    if (report === null && died) fail(`the canary failed on ${what}: ${r.status ?? r.signal}\n${r.stderr}`);
    if (report !== null && !(died && report.test(r.stderr))) {
      fail(`${what} in the canary did not end the process with its report (exit ${r.status ?? r.signal}); ` +
        `a report during the suite would not fail the run\n${r.stderr}`);
    }
    console.log(`sanitizer canary: ${what}: ${report === null ? 'returned' : `stopped the process (${r.signal ?? r.status})`}`);
  }
}

const { addon, canary, compiler } = build();
const env = sanitizerEnv(compiler);
checkCanary(canary, env);

const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
console.log(`$ LD_PRELOAD=${env.LD_PRELOAD} ACCEPTPOOL_NATIVE=${path.relative(root, addon)} mocha ${process.argv.slice(2).join(' ')}`);
const started = Date.now();
const r = spawnSync(process.execPath, [mocha, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...env, ACCEPTPOOL_NATIVE: addon },
  timeout: RUN_LIMIT_MS,
  killSignal: 'SIGKILL',
});
console.log(`test:asan: mocha ran ${Math.round((Date.now() - started) / 1000)} s`);
if (r.error) fail(`mocha: ${r.error.message}`);
if (r.signal) fail(`mocha ended by ${r.signal} (a sanitizer report above, or the ${RUN_LIMIT_MS / 60000}-minute limit)`);
process.exit(r.status);
