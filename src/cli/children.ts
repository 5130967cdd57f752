/**
 * Child processes of the CLI, and the one control protocol every child
 * speaks, whatever it is written in (the C server speaks it too):
 *
 * - the parent writes one request per line on the child's stdin,
 *   `<type> <id>` (for example `stats 7`);
 * - the child writes one JSON object per line on its stdout, each with a
 *   `type`: replies carry the request's `id` (`{"type":"stats","id":7,...}`,
 *   or `{"type":"error","id":7,"message":...}` for a request it does not
 *   know), announcements carry none (`listening`, `result`);
 * - the child exits when its stdin ends (the parent stopped it, or died),
 *   on SIGTERM or SIGINT, and after the maximum lifetime it was given.
 *
 * Pipes rather than Node's IPC channel: Node does not support that channel
 * with a child that is not Node, and one protocol for all makes a server
 * written in any language one more entry of the server table.
 * Every wait here is bounded, and every child is tracked so that Ctrl-C (or
 * any exit) can stop them all.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

/** A line a child wrote: replies carry the id of their request. */
export interface ChildMessage {
  type: string;
  id?: number;
  [key: string]: unknown;
}

/** How to start a child: the program and its arguments. */
export interface Launch {
  command: string;
  args: string[];
}

/** What a child's stdout may hold at most in one unfinished line. */
const MAX_LINE = 1 << 20;

function parseMessage(line: string): ChildMessage | null {
  if (!line.startsWith('{')) return null;
  try {
    const m: unknown = JSON.parse(line);
    return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' ? (m as ChildMessage) : null;
  } catch {
    return null;
  }
}

/** Splits a stream of text into lines, keeping the unfinished tail. */
function lineReader(onLine: (line: string) => void): (chunk: string) => void {
  let buffered = '';
  return (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      onLine(buffered.slice(0, nl).trim());
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
    }
    if (buffered.length > MAX_LINE) buffered = '';
  };
}

const live = new Set<Child>();

export class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  private running = true;
  private nextId = 1;
  private readonly waiters = new Map<number, (m: ChildMessage) => void>();
  private readonly typeWaiters: Array<{ type: string; resolve: (m: ChildMessage) => void }> = [];
  private stderrTail = '';

  constructor(
    readonly name: string,
    launch: Launch,
  ) {
    this.proc = spawn(launch.command, launch.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this);
    // A child that is gone makes writes to its stdin fail: not an error here.
    this.proc.stdin.on('error', () => undefined);
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on(
      'data',
      lineReader((line) => this.onLine(line)),
    );
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
    });
    this.exited = new Promise((resolve) => {
      const done = (code: number | null): void => {
        if (!this.running) return;
        this.running = false;
        live.delete(this);
        resolve(code);
      };
      this.proc.on('exit', (code, signal) => done(code ?? (signal !== null ? -1 : null)));
      this.proc.on('error', (err) => {
        this.stderrTail += `\n${err.message}`;
        done(-1);
      });
    });
  }

  private onLine(line: string): void {
    const m = parseMessage(line);
    if (m === null) return;
    if (m.id !== undefined) {
      const w = this.waiters.get(m.id);
      this.waiters.delete(m.id);
      w?.(m);
      return;
    }
    const i = this.typeWaiters.findIndex((w) => w.type === m.type);
    if (i >= 0) this.typeWaiters.splice(i, 1)[0].resolve(m);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.running;
  }

  /** What the child last wrote to stderr, for error messages. */
  stderr(): string {
    const t = this.stderrTail.trim();
    return t.length > 0 ? `: ${t.slice(-500)}` : '';
  }

  /** The next announcement of this type (a line without an id), within timeoutMs. */
  waitFor(type: string, timeoutMs: number): Promise<ChildMessage> {
    return this.bounded(new Promise<ChildMessage>((resolve) => this.typeWaiters.push({ type, resolve })), timeoutMs, `"${type}"`);
  }

  /** Sends a request and waits for the reply with its id. */
  async request(type: string, timeoutMs = 10000): Promise<ChildMessage> {
    const id = this.nextId++;
    const reply = new Promise<ChildMessage>((resolve) => this.waiters.set(id, resolve));
    if (this.running && this.proc.stdin.writable) this.proc.stdin.write(`${type} ${id}\n`);
    const m = await this.bounded(reply, timeoutMs, `reply to "${type}"`).finally(() => this.waiters.delete(id));
    if (m.type === 'error') throw new Error(`${this.name} refused "${type}": ${String(m.message)}`);
    return m;
  }

  private bounded<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const failed = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms${this.stderr()}`)), timeoutMs);
    });
    const gone = this.exited.then((code): never => {
      throw new Error(`${this.name} exited (code ${String(code)})${this.stderr()}`);
    });
    return Promise.race([p, failed, gone]).finally(() => clearTimeout(timer));
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      this.proc.kill(signal);
    } catch {
      // already gone
    }
  }

  /** Ends the child's stdin (it exits), then SIGTERM, then SIGKILL; bounded. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.running) return;
    this.proc.stdin.end();
    if (await exitsWithin(this, graceMs)) return;
    this.kill('SIGTERM');
    if (await exitsWithin(this, 1000)) return;
    this.kill('SIGKILL');
    await exitsWithin(this, 2000);
  }
}

export async function exitsWithin(child: Child, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([child.exited.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

/** Stops every child still running (bounded). */
export async function stopAllChildren(): Promise<void> {
  for (const c of live) c.kill('SIGTERM');
  const all = [...live];
  const settled = await Promise.all(all.map((c) => exitsWithin(c, 1500)));
  all.forEach((c, i) => {
    if (!settled[i]) c.kill('SIGKILL');
  });
  await Promise.all(all.map((c) => exitsWithin(c, 1500)));
}

// ---------------------------------------------------------------- the child's side

/** In a child: one line to the parent. */
export function reply(message: ChildMessage): void {
  process.stdout.write(JSON.stringify(message) + '\n');
}

/**
 * In a child: answers the parent's requests with `answer` (undefined: a
 * request it does not know) and exits when stdin ends, on SIGTERM/SIGINT,
 * when the parent can no longer be written to, or after maxLifetimeMs, so
 * no child is ever left behind. `onExit` runs first (bounded).
 */
export function serveParent(
  maxLifetimeMs: number,
  answer: (type: string) => Record<string, unknown> | undefined,
  onExit: () => Promise<void> | void,
): void {
  let exiting = false;
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(code), 1500).unref();
    Promise.resolve()
      .then(onExit)
      .catch(() => undefined)
      .finally(() => process.exit(code));
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on(
    'data',
    lineReader((line) => {
      const [type, id] = line.split(/\s+/);
      if (type === undefined || type === '' || !/^\d+$/.test(id ?? '')) return;
      const fields = answer(type);
      reply(
        fields === undefined
          ? { type: 'error', id: Number(id), message: `unknown request "${type}"` }
          : { ...fields, type, id: Number(id) },
      );
    }),
  );
  process.stdin.on('end', () => exit(0));
  process.stdin.on('error', () => exit(0));
  process.stdout.on('error', () => exit(0));
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));
  setTimeout(() => exit(3), maxLifetimeMs).unref();
}
