/**
 * The event-delivery micro-benchmark of `acceptpool bench --only emit`, in
 * a fresh Node of its own (`emit-child.js <calls> <rounds>`; the control
 * protocol of ./children): what an isolated event (src/isolate.ts) costs
 * next to a plain EventEmitter.emit, with one listener (the common case,
 * which must cost the same) and with two (which pay for a try per
 * listener). The variants run interleaved, round after round; it sends
 * { type: 'result', variants: [{ label, nsPerEvent: [one per round] }] }
 * and exits.
 */
import { EventEmitter } from 'node:events';

import { reply, serveParent } from './children';
import { IsolatingEmitter } from '../isolate';

class Isolated extends IsolatingEmitter {
  data(a: unknown, b: unknown): void {
    this.deliver2('data', a, b);
  }
}

let sink = 0;
const session = { id: 1 };
const chunk = Buffer.alloc(16);
const listener = (_s: unknown, c: Buffer): void => {
  sink += c.length;
};

function withListeners<T extends EventEmitter>(e: T, n: number): T {
  for (let i = 0; i < n; i++) e.on('data', listener);
  return e;
}

function run(calls: number, rounds: number): void {
  const plain1 = withListeners(new EventEmitter(), 1);
  const plain2 = withListeners(new EventEmitter(), 2);
  const iso1 = withListeners(new Isolated(), 1);
  const iso2 = withListeners(new Isolated(), 2);
  const variants: Array<[string, () => void]> = [
    [
      'EventEmitter.emit, 1 listener',
      () => {
        for (let i = 0; i < calls; i++) plain1.emit('data', session, chunk);
      },
    ],
    [
      'isolated delivery, 1 listener',
      () => {
        for (let i = 0; i < calls; i++) iso1.data(session, chunk);
      },
    ],
    [
      'EventEmitter.emit, 2 listeners',
      () => {
        for (let i = 0; i < calls; i++) plain2.emit('data', session, chunk);
      },
    ],
    [
      'isolated delivery, 2 listeners',
      () => {
        for (let i = 0; i < calls; i++) iso2.data(session, chunk);
      },
    ],
  ];
  const ns = variants.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    variants.forEach(([, fn], i) => {
      const t0 = process.hrtime.bigint();
      fn();
      ns[i].push(Number(process.hrtime.bigint() - t0) / calls);
    });
  }
  // Every listener ran (the loops were not optimised away).
  const expected = 6 * calls * rounds * chunk.length;
  reply({ type: 'result', calls, rounds, ran: sink === expected, variants: variants.map(([label], i) => ({ label, nsPerEvent: ns[i] })) });
  setTimeout(() => process.exit(0), 50);
}

const [calls, rounds] = process.argv.slice(2).map(Number);
serveParent(
  10 * 60 * 1000,
  () => undefined,
  () => undefined,
);
run(calls, rounds);
