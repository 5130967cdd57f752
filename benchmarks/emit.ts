/**
 * Micro-benchmark of handler isolation (src/isolate.ts): what an isolated
 * 'data' event costs next to a plain EventEmitter.emit, with one listener
 * (the common case, which must cost the same) and with two (which pay for a
 * try per listener).
 *
 *   npx tsc -p tsconfig.json && node dist/benchmarks/emit.js [--calls=N] [--rounds=N]
 *
 * Variants run interleaved, round after round, and the median and minimum
 * ns per event of each are printed: on a shared machine the minimum is the
 * cleaner figure, the median the fairer one.
 */
import { EventEmitter } from 'node:events';

import { IsolatingEmitter } from '../src/isolate';

class Bench extends IsolatingEmitter {
  data(a: unknown, b: unknown): void {
    this.deliver2('data', a, b);
  }
}

function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const n = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer`);
  return n;
}

const calls = option('calls', 5_000_000);
const rounds = option('rounds', 15);

let sink = 0;
const session = { id: 1 };
const chunk = Buffer.alloc(16);
const listener = (_s: unknown, c: Buffer): void => {
  sink += c.length;
};

function emitter(listeners: number): EventEmitter {
  const e = new EventEmitter();
  for (let i = 0; i < listeners; i++) e.on('data', listener);
  return e;
}

function isolating(listeners: number): Bench {
  const e = new Bench();
  for (let i = 0; i < listeners; i++) e.on('data', listener);
  return e;
}

const plain1 = emitter(1);
const plain2 = emitter(2);
const iso1 = isolating(1);
const iso2 = isolating(2);

const variants: [string, () => void][] = [
  ['EventEmitter.emit, 1 listener', () => {
    for (let i = 0; i < calls; i++) plain1.emit('data', session, chunk);
  }],
  ['isolated deliver, 1 listener', () => {
    for (let i = 0; i < calls; i++) iso1.data(session, chunk);
  }],
  ['EventEmitter.emit, 2 listeners', () => {
    for (let i = 0; i < calls; i++) plain2.emit('data', session, chunk);
  }],
  ['isolated deliver, 2 listeners', () => {
    for (let i = 0; i < calls; i++) iso2.data(session, chunk);
  }],
];

const samples = new Map<string, number[]>(variants.map(([name]) => [name, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of variants) {
    const t0 = process.hrtime.bigint();
    run();
    (samples.get(name) as number[]).push(Number(process.hrtime.bigint() - t0) / calls);
  }
}

console.log(`${calls} events per run, ${rounds} rounds, node ${process.version}`);
for (const [name, list] of samples) {
  list.sort((a, b) => a - b);
  const median = list[Math.floor(list.length / 2)];
  console.log(`${name.padEnd(32)} median ${median.toFixed(1).padStart(6)} ns   min ${list[0].toFixed(1).padStart(6)} ns`);
}
if (sink === 0) console.log('(no listener ran)');
