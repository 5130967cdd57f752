/**
 * The wire format: native code defines every enum, record layout and counter
 * that crosses into JS once (native/core/wire.h), and the addon exports it.
 * TypeScript's declarations (src/native.ts, src/types.ts) name what it
 * relies on; these tests hold the two views to each other: exactly the same
 * names, distinct values, every value in range.
 */
import * as assert from 'node:assert/strict';

import { createServer, runLoad } from '../src/index';
import { binding } from '../src/native';
import type { NativeWire } from '../src/native';
import type {
  CloseReason,
  LatencySummary,
  LoadMode,
  LoadPhase,
  LoadProgress,
  LoadResult,
  ProxyCommand,
  ProxyFamily,
  ProxyRejectReason,
  ProxyTransport,
  StaleCommand,
  StatsCounters,
} from '../src/types';
import { decodeErrorWord } from '../src/wire';
import { DRIVERS, cleanup, startEcho, track } from './helpers';

const wire: NativeWire = binding.wire;

// Each list as TypeScript declares it. The compiler checks that every name
// of a declaration is here, and only those; the tests check the addon's.
type Names<T> = { [K in keyof T]: true };
const NUMBERED: { [L in 'EventType' | 'SendResult' | 'CloseMode' | 'SessionControl' | 'Code' | 'ConnectStep']: Names<NativeWire[L]> } = {
  EventType: {
    Session: true,
    Data: true,
    Drain: true,
    End: true,
    Close: true,
    Stale: true,
    ServerClosed: true,
    Connected: true,
    ConnectFailed: true,
    Timeout: true,
    Totals: true,
    ProxyRejected: true,
    Draining: true,
  },
  SendResult: { Ok: true, Backpressure: true, Stale: true, Closed: true, Overflow: true, Failed: true },
  CloseMode: { Graceful: true, Abort: true, End: true },
  SessionControl: { Pause: true, Resume: true, Timeout: true, NoDelay: true, KeepAlive: true },
  Code: { Ok: true, Closed: true, Invalid: true, PoolFull: true, NoMemory: true, System: true, Unsupported: true },
  ConnectStep: { Connect: true, Bind: true },
};
const CLOSE_REASONS: Names<Record<CloseReason, true>> = {
  remote: true,
  reset: true,
  local: true,
  timeout: true,
  shutdown: true,
  overflow: true,
  error: true,
};
const STALE_COMMANDS: Names<Record<StaleCommand, true>> = {
  send: true,
  close: true,
  pause: true,
  resume: true,
  setTimeout: true,
  setNoDelay: true,
  setKeepAlive: true,
};
const LOAD_MODES: Names<Record<LoadMode, true>> = {
  'connect-close': true,
  reqrep: true,
  echo: true,
  idle: true,
  http: true,
  'http-close': true,
};
const PROXY_COMMANDS: Names<Record<ProxyCommand, true>> = { local: true, proxy: true };
const PROXY_FAMILIES: Names<Record<ProxyFamily, true>> = { unspec: true, IPv4: true, IPv6: true, unix: true };
const PROXY_TRANSPORTS: Names<Record<ProxyTransport, true>> = { unspec: true, stream: true, dgram: true };
const PROXY_REJECTS: Names<Record<ProxyRejectReason, true>> = {
  untrusted: true,
  malformed: true,
  timeout: true,
  aborted: true,
  busy: true,
};
const PROXY_HEAD: Names<NativeWire['proxyHead']> = {
  size: true,
  version: true,
  command: true,
  family: true,
  transport: true,
  unix_bytes: true,
  tlv_bytes: true,
  source: true,
  destination: true,
};
const PROXY_REJECT: Names<NativeWire['proxyReject']> = { reason: true, error: true };
const LOAD_PHASES: Names<Record<LoadPhase, true>> = { ramp: true, warmup: true, measure: true, hold: true, draining: true, done: true };
const STATS: Names<StatsCounters> = {
  poolSize: true,
  poolFree: true,
  inUse: true,
  retiredSlots: true,
  peakInUse: true,
  growths: true,
  shrinks: true,
  accepts: true,
  connects: true,
  connectErrors: true,
  acceptErrors: true,
  acceptAborts: true,
  emfile: true,
  shed: true,
  acceptPauses: true,
  staleCommands: true,
  overflows: true,
  timeouts: true,
  bytesIn: true,
  bytesOut: true,
  sendBlocks: true,
  lingers: true,
  lingerEnds: true,
  lingerTimeouts: true,
  bytesDiscarded: true,
  sessionTimeouts: true,
  proxyHeaders: true,
  proxyLocal: true,
  proxyUntrusted: true,
  proxyMalformed: true,
  proxyTimeouts: true,
  proxyAborted: true,
  proxyBusy: true,
  drains: true,
  drainCloses: true,
};
const RECORD: Names<NativeWire['record']> = { type: true, id: true, a: true, b: true };
const ERROR_WORD: Names<NativeWire['errorWord']> = { sys: true, raw: true, code: true, step: true };
const ADDRESS: Names<NativeWire['address']> = { size: true, family: true, port: true, addr: true };
const TOP: Names<NativeWire> = {
  EventType: true,
  SendResult: true,
  CloseMode: true,
  SessionControl: true,
  Code: true,
  ConnectStep: true,
  errorNames: true,
  closeReasons: true,
  staleCommands: true,
  loadModes: true,
  loadPhases: true,
  statsFields: true,
  record: true,
  recordDoubles: true,
  recordsPerBatch: true,
  errorWord: true,
  address: true,
  slotBits: true,
  maxThreads: true,
  maxQueuedBytes: true,
  readChunk: true,
  threadedBatches: true,
  maxLoadThreads: true,
  maxLoadMessage: true,
  proxyHead: true,
  proxyReject: true,
  proxyCommands: true,
  proxyFamilies: true,
  proxyTransports: true,
  proxyErrors: true,
  proxyRejects: true,
  proxyUnixPathBytes: true,
};

// The shapes the load generator hands back as they are.
const PROGRESS: Names<LoadProgress> = { total: true, completed: true, errors: true, open: true, phase: true, running: true };
const RESULT: Names<LoadResult> = {
  mode: true,
  threads: true,
  connections: true,
  rate: true,
  completed: true,
  total: true,
  connects: true,
  connected: true,
  abandoned: true,
  peakOpen: true,
  windowMs: true,
  rampMs: true,
  bytesIn: true,
  bytesOut: true,
  errors: true,
  errorCount: true,
  latencyUs: true,
  cpuUs: true,
};
const LATENCY: Names<LatencySummary> = { count: true, mean: true, p50: true, p90: true, p99: true, p999: true, max: true };

function sorted(names: Iterable<string>): string[] {
  return [...names].sort();
}

function assertDistinct(values: readonly unknown[], what: string): void {
  assert.equal(new Set(values).size, values.length, `${what}: a value is used twice (${values.join(', ')})`);
}

describe('wire format (native lists vs TypeScript declarations)', () => {
  afterEach(cleanup);

  it('the addon exports exactly the lists TypeScript declares, frozen', () => {
    assert.deepEqual(sorted(Object.keys(wire)), sorted(Object.keys(TOP)));
    for (const key of Object.keys(TOP) as (keyof NativeWire)[]) {
      const v = wire[key];
      if (typeof v === 'object') assert.ok(Object.isFrozen(v), `wire.${key} is not frozen`);
    }
    assert.ok(Object.isFrozen(wire));
  });

  for (const list of Object.keys(NUMBERED) as (keyof typeof NUMBERED)[]) {
    it(`${list}: the same names, distinct integer values that fit a byte`, () => {
      const native = wire[list] as Readonly<Record<string, number>>;
      assert.deepEqual(sorted(Object.keys(native)), sorted(Object.keys(NUMBERED[list])));
      const values = Object.values(native);
      assertDistinct(values, list);
      for (const v of values) assert.ok(Number.isInteger(v) && v >= 0 && v <= 255, `${list} value ${v}`);
    });
  }

  const named: [string, readonly string[], object][] = [
    ['closeReasons', wire.closeReasons, CLOSE_REASONS],
    ['staleCommands', wire.staleCommands, STALE_COMMANDS],
    ['loadModes', wire.loadModes, LOAD_MODES],
    ['loadPhases', wire.loadPhases, LOAD_PHASES],
    ['statsFields', wire.statsFields, STATS],
    ['proxyCommands', wire.proxyCommands, PROXY_COMMANDS],
    ['proxyFamilies', wire.proxyFamilies, PROXY_FAMILIES],
    ['proxyTransports', wire.proxyTransports, PROXY_TRANSPORTS],
    ['proxyRejects', wire.proxyRejects, PROXY_REJECTS],
  ];
  for (const [list, native, declared] of named) {
    it(`${list}: the same names, each once`, () => {
      assertDistinct(native, list);
      assert.deepEqual(sorted(native), sorted(Object.keys(declared)));
    });
  }

  it('errorNames: Node-style codes, each once, OK first (no error)', () => {
    assertDistinct(wire.errorNames, 'errorNames');
    assert.equal(wire.errorNames[0], 'OK');
    for (const name of wire.errorNames.slice(1)) assert.match(name, /^E[A-Z]+$/);
  });

  it('record: every field a distinct index among the record doubles', () => {
    assert.deepEqual(sorted(Object.keys(wire.record)), sorted(Object.keys(RECORD)));
    const at = Object.values(wire.record);
    assertDistinct(at, 'record');
    assert.deepEqual(
      [...at].sort((x, y) => x - y),
      Array.from({ length: wire.recordDoubles }, (_, i) => i),
    );
    assert.ok(Number.isInteger(wire.recordsPerBatch) && wire.recordsPerBatch >= 64);
  });

  it('error word: fields that do not overlap, end below bit 53, and hold what they carry', () => {
    assert.deepEqual(sorted(Object.keys(wire.errorWord)), sorted(Object.keys(ERROR_WORD)));
    const fields = Object.values(wire.errorWord).sort((x, y) => x.shift - y.shift);
    for (let i = 1; i < fields.length; i++) assert.ok(fields[i - 1].shift + fields[i - 1].bits <= fields[i].shift, 'fields overlap');
    const last = fields[fields.length - 1];
    assert.ok(last.shift + last.bits <= 53, 'the word is not an exact double');
    assert.equal(wire.errorWord.raw.bits, 32);
    assert.ok(2 ** wire.errorWord.sys.bits >= wire.errorNames.length);
    assert.ok(2 ** wire.errorWord.code.bits > Math.max(...Object.values(wire.Code)));
    assert.ok(2 ** wire.errorWord.step.bits > Math.max(...Object.values(wire.ConnectStep)));
    assert.deepEqual(decodeErrorWord(0), { code: wire.Code.Ok, sys: 0, raw: 0, step: 0 });
  });

  it('address: a SocketAddress with its parts inside it', () => {
    assert.deepEqual(sorted(Object.keys(wire.address)), sorted(Object.keys(ADDRESS)));
    const { size, family, port, addr } = wire.address;
    assert.ok(family < size && port + 2 <= size && addr + 16 <= size);
  });

  it('proxy records: a head with its fields inside it, a reject info, and error texts', () => {
    assert.deepEqual(sorted(Object.keys(wire.proxyHead)), sorted(Object.keys(PROXY_HEAD)));
    assert.deepEqual(sorted(Object.keys(wire.proxyReject)), sorted(Object.keys(PROXY_REJECT)));
    const { size, source, destination } = wire.proxyHead;
    assert.ok(source + wire.address.size <= size && destination + wire.address.size <= size);
    assertDistinct(
      Object.values(wire.proxyHead).filter((v) => v !== size),
      'proxyHead',
    );
    assertDistinct(wire.proxyErrors, 'proxyErrors');
    assert.ok(wire.proxyErrors.length > 1 && wire.proxyUnixPathBytes === 108);
  });

  it('limits: positive integers', () => {
    assert.ok(wire.slotBits > 0 && wire.slotBits <= 32);
    for (const limit of [wire.maxQueuedBytes, wire.maxLoadThreads, wire.maxLoadMessage])
      assert.ok(Number.isSafeInteger(limit) && limit > 0);
  });

  it("the load generator's progress() and result have exactly the declared fields", async () => {
    const progress = new binding.NativeLoadGenerator().progress();
    assert.deepEqual(sorted(Object.keys(progress)), sorted(Object.keys(PROGRESS)));
    assert.ok(wire.loadPhases.includes(progress.phase));
    const h = await startEcho('threaded');
    const result = await runLoad({ port: h.port, duration: 50, warmup: 0, connections: 2 });
    assert.deepEqual(sorted(Object.keys(result)), sorted(Object.keys(RESULT)));
    assert.deepEqual(sorted(Object.keys(result.latencyUs)), sorted(Object.keys(LATENCY)));
  });

  for (const driver of DRIVERS) {
    it(`stats() (${driver} driver) has every counter of the list and nothing else but backend, driver, backendCounters and perThread, each thread's the same counters`, () => {
      const stats = track(createServer({ driver })).stats();
      const extra = new Set(['backend', 'driver', 'backendCounters', 'perThread']);
      assert.deepEqual(sorted(Object.keys(stats).filter((k) => !extra.has(k))), sorted(wire.statsFields));
      for (const key of wire.statsFields) assert.equal(typeof stats[key], 'number', key);
      assert.equal(stats.perThread.length, 1);
      const thread = stats.perThread[0];
      assert.deepEqual(sorted(Object.keys(thread).filter((k) => k !== 'backendCounters')), sorted(wire.statsFields));
      for (const key of wire.statsFields) assert.equal(thread[key], key === 'staleCommands' ? 0 : stats[key], key);
    });
  }
});
