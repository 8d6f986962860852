import { envName, type OptionSpec } from './options.ts';
import { missingValue, unknownOption } from '../errors.ts';
import { parseBoolean } from './values.ts';

/**
 * Raw option values by name: a string for `value`, strings for `list`, true for a set `flag`
 * (false for one an environment variable or a config file turned off explicitly).
 */
export type RawOptions = ReadonlyMap<string, string | readonly string[] | boolean>;

/**
 * Parses `--name value`, `--name=value` and flags against `specs`; options not on the command line
 * are taken from `env` (`P2PD_<NAME>`; lists comma-separated). The command line wins over env.
 * Positional arguments are refused: every p2pd command takes options only.
 */
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[], env: NodeJS.ProcessEnv = {}): RawOptions {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out = new Map<string, string | readonly string[] | boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--') || arg === '--') throw unknownOption(arg);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byName.get(name);
    if (!spec) throw unknownOption(`--${name}`);
    if (spec.kind === 'flag') {
      if (eq >= 0) throw unknownOption(`${arg} (--${name} is a flag and takes no value)`);
      out.set(name, true);
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw missingValue(name);
      value = next;
      i++;
    }
    if (spec.kind === 'list') {
      const prev = out.get(name);
      out.set(name, Array.isArray(prev) ? [...(prev as readonly string[]), value] : [value]);
    } else out.set(name, value);
  }
  for (const spec of specs) {
    if (out.has(spec.name)) continue;
    const raw = env[envName(spec.name)];
    if (raw === undefined || raw === '') continue;
    if (spec.kind === 'flag') out.set(spec.name, parseBoolean(spec.name, raw));
    else if (spec.kind === 'list') out.set(spec.name, raw.split(',').map((s) => s.trim()).filter(Boolean));
    else out.set(spec.name, raw);
  }
  return out;
}

/**
 * `over` with what it lacks taken from `under`: the precedence of layers (docs/operations.md
 * "Config file": option > environment > file > default).
 */
export function withFallback(over: RawOptions, under: RawOptions): RawOptions {
  const out = new Map(under);
  for (const [k, v] of over) out.set(k, v);
  return out;
}

export function getString(raw: RawOptions, name: string): string | undefined {
  const v = raw.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function getList(raw: RawOptions, name: string): readonly string[] {
  const v = raw.get(name);
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function getFlag(raw: RawOptions, name: string): boolean {
  return raw.get(name) === true;
}
