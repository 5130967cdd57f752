/**
 * Native code takes options complete and validated (src/options.ts owns
 * every default and range) and has no defaults of its own. What it still
 * checks is that each value is there and fits: an option that is missing or
 * of the wrong kind when it reaches native code is a facade bug, and must be
 * an ERR_ACCEPTPOOL_INVALID_ARG naming it, never a guess and never a crash.
 */
import * as assert from 'node:assert/strict';

import { binding } from '../src/native';
import type { NativeLoadOptions, NativeServerOptions } from '../src/native';
import { resolveLoadOptions, resolveOptions } from '../src/options';
import { wire } from '../src/wire';
import { DRIVERS, assertThrowsCode } from './helpers';

const INVALID = 'ERR_ACCEPTPOOL_INVALID_ARG';

function newNative(options: Record<string, unknown>): void {
  const records = new Float64Array(wire.recordsPerBatch * wire.recordDoubles);
  const server = new binding.NativeServer(options as unknown as NativeServerOptions, records, () => undefined);
  server.destroy();
}

function assertNamed(fn: () => unknown, key: string, what: string): void {
  assertThrowsCode(fn, INVALID, what);
  assert.throws(fn, new RegExp(`option ${key} must be `), what);
}

for (const driver of DRIVERS) {
  describe(`native options (${driver} driver): complete, checked, no defaults`, () => {
    const complete = resolveOptions({ driver }, 'server').native;

    it('a server made from the resolved options starts', () => {
      newNative({ ...complete });
    });

    it('refuses every missing option by name instead of filling in a default', () => {
      for (const key of Object.keys(complete)) {
        const partial: Record<string, unknown> = { ...complete };
        delete partial[key];
        assertNamed(() => newNative(partial), key, `without ${key}`);
      }
    });

    it('refuses every option of the wrong kind by name', () => {
      for (const [key, value] of Object.entries(complete)) {
        const wrong = typeof value === 'number' ? ['1', -1, 1.5, NaN, 2 ** 53] : typeof value === 'boolean' ? [1, 'true'] : ['fast', 1];
        for (const bad of wrong) assertNamed(() => newNative({ ...complete, [key]: bad }), key, `${key}: ${String(bad)}`);
      }
    });

    it('refuses a value no native field can hold by name', () => {
      assertNamed(() => newNative({ ...complete, maxConnections: 2 ** wire.slotBits + 1 }), 'maxConnections', 'past the slot space');
      assertNamed(() => newNative({ ...complete, maxQueuedBytes: wire.maxQueuedBytes + 1 }), 'maxQueuedBytes', 'past the queue limit');
      assertNamed(() => newNative({ ...complete, idleTimeoutMs: 2 ** 32 }), 'idleTimeoutMs', 'past 32 bits');
    });
  });
}

describe('native load generator options: complete, checked, no defaults', () => {
  const complete = resolveLoadOptions({ port: 1 }).native;

  function start(options: Record<string, unknown>): void {
    const gen = new binding.NativeLoadGenerator();
    // A bad option throws before anything starts; a good set would run, so
    // every call here leaves one out or spoils one.
    void gen.start(options as unknown as NativeLoadOptions);
    gen.stop();
  }

  it('refuses every missing option by name', () => {
    for (const key of Object.keys(complete)) {
      const partial: Record<string, unknown> = { ...complete };
      delete partial[key];
      assertNamed(() => start(partial), key, `without ${key}`);
    }
  });

  it('refuses every option of the wrong kind by name', () => {
    for (const key of Object.keys(complete)) {
      for (const bad of ['1', -1, 1.5, NaN]) assertNamed(() => start({ ...complete, [key]: bad }), key, `${key}: ${String(bad)}`);
    }
  });

  it('refuses a run it cannot do (more threads than it runs) with ERR_ACCEPTPOOL_INVALID_ARG', () => {
    assertThrowsCode(() => start({ ...complete, threads: wire.maxLoadThreads + 1, connections: 1000 }), INVALID, 'too many threads');
  });
});
