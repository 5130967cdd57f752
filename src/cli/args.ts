/**
 * Command-line options: declared once per command (name, type, range, help),
 * parsed with clear messages. `--name value` and `--name=value` both work;
 * flags take no value.
 */

/** A mistake in how the command was called: printed with a hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface BaseSpec {
  name: string;
  help: string;
}
export interface FlagSpec extends BaseSpec {
  kind: 'flag';
}
export interface NumberSpec extends BaseSpec {
  kind: 'number' | 'integer';
  min: number;
  max: number;
  value: string;
}
export interface ChoiceSpec extends BaseSpec {
  kind: 'choice';
  choices: readonly string[];
}
export interface ListSpec extends BaseSpec {
  kind: 'list';
  choices: readonly string[];
}
export interface StringSpec extends BaseSpec {
  kind: 'string';
  value: string;
}
export type OptionSpec = FlagSpec | NumberSpec | ChoiceSpec | ListSpec | StringSpec;

export type OptionValue = boolean | number | string | string[];

/** What was given on the command line, by option name (absent = not given). */
export class ParsedArgs {
  constructor(private readonly values: ReadonlyMap<string, OptionValue>) {}

  has(name: string): boolean {
    return this.values.has(name);
  }
  flag(name: string): boolean {
    return this.values.get(name) === true;
  }
  number(name: string, fallback: number): number {
    const v = this.values.get(name);
    return typeof v === 'number' ? v : fallback;
  }
  string(name: string): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }
  list(name: string): string[] | undefined {
    const v = this.values.get(name);
    return Array.isArray(v) ? v : undefined;
  }
}

function convert(spec: OptionSpec, raw: string): OptionValue {
  const option = `--${spec.name}`;
  switch (spec.kind) {
    case 'flag':
      return true;
    case 'number':
    case 'integer': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      const whole = spec.kind === 'integer';
      if (!Number.isFinite(n) || (whole && !Number.isInteger(n)) || n < spec.min || n > spec.max) {
        const what = whole ? 'an integer' : 'a number';
        throw new UsageError(`${option} must be ${what} from ${spec.min} to ${spec.max}, got "${raw}"`);
      }
      return n;
    }
    case 'choice':
      if (!spec.choices.includes(raw)) {
        throw new UsageError(`${option} must be one of ${spec.choices.join(', ')}, got "${raw}"`);
      }
      return raw;
    case 'list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      if (items.length === 0) throw new UsageError(`${option} needs at least one of ${spec.choices.join(', ')}`);
      items.forEach((item, i) => {
        if (!spec.choices.includes(item)) {
          throw new UsageError(`${option}: unknown "${item}" (one of ${spec.choices.join(', ')})`);
        }
        if (items.indexOf(item) !== i) throw new UsageError(`${option}: "${item}" given twice`);
      });
      return items;
    }
    case 'string':
      if (raw.length === 0) throw new UsageError(`${option} needs a non-empty value`);
      return raw;
  }
}

/** Parses argv against the specs; throws UsageError on the first mistake. */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[]): ParsedArgs {
  const values = new Map<string, OptionValue>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--') throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq >= 0 ? eq : undefined);
    const spec = specs.find((s) => s.name === name);
    if (spec === undefined) throw new UsageError(`unknown option --${name}`);
    if (values.has(name)) throw new UsageError(`--${name} given twice`);
    let raw = '';
    if (spec.kind === 'flag') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
    } else if (eq >= 0) {
      raw = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      raw = next;
      i++;
    }
    values.set(name, convert(spec, raw));
  }
  return new ParsedArgs(values);
}

/** The options part of a command's help text. */
export function describeOptions(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s): [string, string] => {
    let left = `--${s.name}`;
    if (s.kind === 'number' || s.kind === 'integer' || s.kind === 'string') left += ` ${s.value}`;
    else if (s.kind === 'choice') left += ` ${s.choices.join('|')}`;
    else if (s.kind === 'list') left += ` a,b,...`;
    return [left, s.help];
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, help]) => `  ${left.padEnd(width)}${help}`).join('\n');
}
