import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { DRIVERS, delay, fixturePath, waitFor } from './helpers';

interface Run {
  exited: boolean;
  code: number | null;
  stdout: string;
  kill(): void;
}

function run(driver: string, mode: string): Run {
  const proc = spawn(process.execPath, [fixturePath('unref-server'), driver, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const r: Run = {
    exited: false,
    code: null,
    stdout: '',
    kill: () => {
      if (!r.exited) proc.kill('SIGKILL');
    },
  };
  proc.stdout.on('data', (d: Buffer) => {
    r.stdout += d.toString();
  });
  proc.on('exit', (code) => {
    r.exited = true;
    r.code = code;
  });
  return r;
}

for (const driver of DRIVERS) {
  describe(`ref/unref (${driver} driver)`, function () {
    this.timeout(20_000);
    const runs: Run[] = [];
    afterEach(() => {
      for (const r of runs) r.kill();
      runs.length = 0;
    });

    it('a listening server keeps the process alive', async () => {
      const r = run(driver, 'none');
      runs.push(r);
      await waitFor(() => r.stdout.includes('ready') || r.exited, 10_000, 'child ready');
      await delay(1_000);
      assert.equal(r.exited, false, `the process exited (code ${String(r.code)}) while its server was listening`);
    });

    it('after unref() a listening server lets the process exit', async () => {
      const r = run(driver, 'unref');
      runs.push(r);
      await waitFor(() => r.exited, 10_000, 'the process to exit after unref()');
      assert.ok(r.stdout.includes('ready'), 'the child never listened');
      assert.equal(r.code, 0);
    });

    it('ref() after unref() keeps the process alive again', async () => {
      const r = run(driver, 'unref-ref');
      runs.push(r);
      await waitFor(() => r.stdout.includes('ready') || r.exited, 10_000, 'child ready');
      await delay(1_000);
      assert.equal(r.exited, false, `the process exited (code ${String(r.code)}) although ref() was called`);
    });
  });
}
