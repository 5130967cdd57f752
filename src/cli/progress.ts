/**
 * A progress bar on stderr for long runs. On a terminal it redraws one line
 * (bar, percentage, what runs now, time left); otherwise it prints one line
 * per step, so logs stay readable. Work is counted in expected seconds.
 */
export class Progress {
  private doneSeconds = 0;
  private currentSeconds = 0;
  private currentStart = 0;
  private label = '';
  private step = 0;
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(
    private readonly totalSeconds: number,
    private readonly totalSteps: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
  ) {}

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  /** A step that should take about `seconds` begins. */
  begin(label: string, seconds: number): void {
    if (!this.enabled) return;
    this.step++;
    this.label = label;
    this.currentSeconds = seconds;
    this.currentStart = Date.now();
    if (!this.tty) {
      this.stream.write(`[${this.step}/${this.totalSteps}] ${label}\n`);
      return;
    }
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
    this.draw();
  }

  /** The current step is over. */
  end(): void {
    this.doneSeconds += this.currentSeconds;
    this.currentSeconds = 0;
  }

  /** A line of its own between steps (a skipped server, a run measured again). */
  note(text: string): void {
    if (!this.enabled) return;
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.stream.write(`${text}\n`);
    if (this.tty && this.drawn) this.draw();
  }

  /** Clears the bar (before the report is printed). */
  finish(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  private draw(): void {
    const elapsed = (Date.now() - this.currentStart) / 1000;
    const current = Math.min(elapsed, this.currentSeconds);
    const fraction = Math.min(1, (this.doneSeconds + current) / Math.max(this.totalSeconds, 1e-9));
    const left = Math.max(0, this.totalSeconds - this.doneSeconds - current);
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    // A terminal that reports no width (0) gets a generous default.
    const columns = this.stream.columns > 0 ? this.stream.columns : 100;
    const line = `[${bar}] ${String(Math.round(fraction * 100)).padStart(3)}%  ~${Math.ceil(left)} s left  ${this.label}`;
    this.stream.write(`\r\x1b[2K${line.slice(0, Math.max(20, columns - 1))}`);
    this.drawn = true;
  }
}
