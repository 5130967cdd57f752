/**
 * Calling user code so that its exceptions cost nothing else.
 *
 * The rule for every callback acceptpool calls (event listeners, per-session
 * handlers): an exception goes to 'uncaughtException', as one thrown out of
 * a Node emitter on the event loop would, and every other listener, every
 * later event and the library's own bookkeeping still run. Promises settle
 * by the library's state, never by what a listener did.
 *
 * Cost: the common case, one listener that does not throw, is a property
 * read and a direct call inside a try (free in V8 until something throws):
 * no more than EventEmitter.emit, which it replaces for our own events. Only
 * an event with several listeners pays for a snapshot of the list and a try
 * per listener. `acceptpool bench --only emit` measures both against a plain emit.
 */
import { EventEmitter } from 'node:events';

function rethrow(err: unknown): never {
  throw err;
}

/**
 * Surfaces a user exception as uncaught without unwinding the caller: it is
 * thrown again on the next tick, outside any of our frames.
 */
export function reportUncaught(err: unknown): void {
  process.nextTick(rethrow, err);
}

// Calls `fn` (when there is one) with `this` = `self` under the rule above.
// One function per arity: a listener gets exactly the arguments emit() would
// give it, and no array is made per call.
export function call0(fn: ((this: unknown) => void) | null, self: unknown): void {
  if (fn === null) return;
  try {
    fn.call(self);
  } catch (err) {
    reportUncaught(err);
  }
}

export function call1<A>(fn: ((this: unknown, a: A) => void) | null, self: unknown, a: A): void {
  if (fn === null) return;
  try {
    fn.call(self, a);
  } catch (err) {
    reportUncaught(err);
  }
}

export function call2<A, B>(fn: ((this: unknown, a: A, b: B) => void) | null, self: unknown, a: A, b: B): void {
  if (fn === null) return;
  try {
    fn.call(self, a, b);
  } catch (err) {
    reportUncaught(err);
  }
}

export function call3<A, B, C>(fn: ((this: unknown, a: A, b: B, c: C) => void) | null, self: unknown, a: A, b: B, c: C): void {
  if (fn === null) return;
  try {
    fn.call(self, a, b, c);
  } catch (err) {
    reportUncaught(err);
  }
}

// EventEmitter's own listener type; the Server and Client interfaces type
// listeners per event.
type Listener = Parameters<EventEmitter['on']>[1];
/** An event's name, as EventEmitter takes it. */
export type EventName = string | symbol;
type Routes = { [event: EventName]: Listener | true | undefined };

// The prototype of every route table: nothing inherited (no toString or
// __proto__ to mistake for a listener), while the table itself, not being a
// null-prototype object, stays in V8's fast mode.
const NO_ROUTES = Object.freeze(Object.create(null) as Routes);

export class IsolatingEmitter extends EventEmitter {
  // Per event: its only listener, `true` when it has several, undefined when
  // none (set, never deleted: a delete would drop the table out of fast
  // mode). Kept up to date by the registration methods below, so an event
  // with one listener costs a property read and a call. Not for 'error',
  // whose emit() throws when nobody listens.
  private readonly routes: Routes = Object.create(NO_ROUTES) as Routes;

  // ---- emitting: what emit() does, each listener in a try.

  /** @internal */
  protected deliver0(event: EventName): void {
    const route = this.routes[event];
    if (route === undefined) return;
    if (route === true) return this.fanOut(event, []);
    call0(route, this);
  }

  /** @internal */
  protected deliver1(event: EventName, a: unknown): void {
    const route = this.routes[event];
    if (route === undefined) return;
    if (route === true) return this.fanOut(event, [a]);
    call1(route, this, a);
  }

  /** @internal */
  protected deliver2(event: EventName, a: unknown, b: unknown): void {
    const route = this.routes[event];
    if (route === undefined) return;
    if (route === true) return this.fanOut(event, [a, b]);
    call2(route, this, a, b);
  }

  /** @internal */
  protected deliver3(event: EventName, a: unknown, b: unknown, c: unknown): void {
    const route = this.routes[event];
    if (route === undefined) return;
    if (route === true) return this.fanOut(event, [a, b, c]);
    call3(route, this, a, b, c);
  }

  // Several listeners: a snapshot of the list (once wrappers included, which
  // remove themselves), as emit() takes.
  private fanOut(event: EventName, args: unknown[]): void {
    const listeners = this.rawListeners(event);
    for (let i = 0; i < listeners.length; i++) {
      try {
        Reflect.apply(listeners[i], this, args);
      } catch (err) {
        reportUncaught(err);
      }
    }
  }

  // ---- registration: every way a listener is added or removed. once() and
  // prependOnceListener() go through on() and prependListener(), and a once
  // wrapper removes itself through removeListener().

  private reroute(event: EventName): this {
    const listeners = this.rawListeners(event);
    this.routes[event] = listeners.length === 0 ? undefined : listeners.length === 1 ? (listeners[0] as Listener) : true;
    return this;
  }

  override on(event: EventName, listener: Listener): this {
    super.on(event, listener);
    return this.reroute(event);
  }

  override addListener(event: EventName, listener: Listener): this {
    super.addListener(event, listener);
    return this.reroute(event);
  }

  override prependListener(event: EventName, listener: Listener): this {
    super.prependListener(event, listener);
    return this.reroute(event);
  }

  override removeListener(event: EventName, listener: Listener): this {
    super.removeListener(event, listener);
    return this.reroute(event);
  }

  override off(event: EventName, listener: Listener): this {
    super.off(event, listener);
    return this.reroute(event);
  }

  override removeAllListeners(event?: EventName): this {
    // EventEmitter tells "no argument" from "undefined" by arguments.length.
    if (event === undefined) {
      super.removeAllListeners();
      for (const key of Reflect.ownKeys(this.routes)) this.routes[key] = undefined;
      return this;
    }
    super.removeAllListeners(event);
    return this.reroute(event);
  }
}
