/**
 * Child processes of the CLI: Node scripts forked with an IPC channel,
 * request/reply by id, every wait bounded. Every child is tracked, so
 * Ctrl-C (or any exit) can stop them all; and every child exits by itself
 * when the channel closes, so none outlives the CLI even if it is killed.
 */
import { type ChildProcess, fork } from 'node:child_process';

/** Messages children send: replies carry the id of the request. */
export interface ChildMessage {
  type: string;
  id?: number;
  [key: string]: unknown;
}

function isMessage(m: unknown): m is ChildMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

const live = new Set<Child>();

export class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  private running = true;
  private nextId = 1;
  private readonly waiters = new Map<number, (m: ChildMessage) => void>();
  private readonly typeWaiters: Array<{ type: string; resolve: (m: ChildMessage) => void }> = [];
  private stderrTail = '';

  constructor(
    readonly name: string,
    script: string,
    args: string[],
    execArgv: string[] = [],
  ) {
    this.proc = fork(script, args, { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    live.add(this);
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
    });
    this.proc.on('message', (m: unknown) => {
      if (!isMessage(m)) return;
      if (m.id !== undefined) {
        const w = this.waiters.get(m.id);
        this.waiters.delete(m.id);
        w?.(m);
        return;
      }
      const i = this.typeWaiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.typeWaiters.splice(i, 1)[0].resolve(m);
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

  /** The next message of this type (sent without an id), within timeoutMs. */
  waitFor(type: string, timeoutMs: number): Promise<ChildMessage> {
    return this.bounded(
      new Promise<ChildMessage>((resolve) => this.typeWaiters.push({ type, resolve })),
      timeoutMs,
      `"${type}"`,
    );
  }

  /** Sends a request and waits for the reply with its id. */
  request(type: string, timeoutMs = 10000, extra: Record<string, unknown> = {}): Promise<ChildMessage> {
    const id = this.nextId++;
    const reply = new Promise<ChildMessage>((resolve) => this.waiters.set(id, resolve));
    if (this.running && this.proc.connected) this.proc.send({ ...extra, type, id });
    return this.bounded(reply, timeoutMs, `reply to "${type}"`).finally(() => this.waiters.delete(id));
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

  /** Closes the channel (the child exits), then SIGTERM, then SIGKILL; bounded. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.running) return;
    if (this.proc.connected) this.proc.disconnect();
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

/**
 * In a child: exit when the parent goes away (the IPC channel closes) or
 * after a maximum lifetime, so no child is ever left behind.
 */
export function exitWithParent(maxLifetimeMs: number, onExit: () => Promise<void> | void): void {
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
  process.on('disconnect', () => exit(0));
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));
  setTimeout(() => exit(3), maxLifetimeMs).unref();
  if (!process.connected) exit(0);
}

/** In a child: replies to the parent (ignored when it is gone). */
export function reply(message: ChildMessage): void {
  if (process.connected && process.send) process.send(message);
}
