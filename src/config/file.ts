/**
 * `--config FILE` (docs/operations.md "Config file"): a YAML mapping whose keys are the names of
 * the options in options.ts (`redis-url: redis://r:6379`, `allow-peer: [10.0.0.0/8]`). Read with
 * YAML's failsafe schema, so every scalar stays the text the operator wrote and goes through the
 * same parser as the option's command-line value: `port: 0x10` is refused as `--port 0x10` is,
 * and a secret such as `auth-secret: 0123` is not turned into a number. The file yields raw
 * values (parse.ts); config.ts types and checks them like any others.
 */
import { readFileSync } from 'node:fs';
import { Alias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { configFileInvalid, invalidValue, missingValue, unknownConfigKey } from '../errors.ts';
import type { OptionSpec } from './options.ts';
import type { RawOptions } from './parse.ts';
import { parseBoolean } from './values.ts';

/** Options a file cannot set: `config` itself (a file does not name another). */
const NOT_IN_FILE = new Set(['config']);

/** The option names a config file may hold: every option of `specs` but `config`. */
export function fileKeys(specs: readonly OptionSpec[]): string[] {
  return specs.filter((s) => !NOT_IN_FILE.has(s.name)).map((s) => s.name);
}

/** Reads `path` and returns its raw option values (see {@link parseConfigText}). */
export function readConfigFile(path: string, specs: readonly OptionSpec[]): RawOptions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configFileInvalid(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseConfigText(text, path, specs);
}

/**
 * Parses the text of a config file named `file` (for messages). Refuses what is not YAML (naming
 * the line), a top level that is not a mapping, unknown keys (naming the closest option), values
 * of the wrong shape (a list for a one-value option, a mapping anywhere) and empty values.
 */
export function parseConfigText(text: string, file: string, specs: readonly OptionSpec[]): RawOptions {
  const lines = new LineCounter();
  // prettyErrors: each message ends "at line L, column C:" followed by the line itself.
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const bad = doc.errors[0];
  if (bad) throw configFileInvalid(file, `not valid YAML: ${bad.message.split('\n')[0]?.replace(/:$/, '').replace('; please use YAML.parseAllDocuments()', '')}`);
  const out = new Map<string, string | string[] | boolean>();
  const root = doc.contents;
  if (root === null || (isScalar(root) && isEmpty(root))) return out;
  if (!isMap(root)) throw configFileInvalid(file, 'the top level must be a mapping of option names to values (`port: 3478`)');
  const byName = new Map(specs.filter((s) => !NOT_IN_FILE.has(s.name)).map((s) => [s.name, s]));
  const lineOf = (n: unknown): string => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r ? `line ${lines.linePos(r[0]).line}` : 'a line';
  };
  for (const pair of root.items) {
    const keyNode = resolve(pair.key, doc, file);
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string') throw configFileInvalid(file, `${lineOf(pair.key)}: a key must be an option name`);
    const key = keyNode.value;
    const spec = byName.get(key);
    if (!spec) {
      if (NOT_IN_FILE.has(key)) throw configFileInvalid(file, `${lineOf(keyNode)}: "${key}" cannot be set in a config file`);
      throw unknownConfigKey(`${file} ${lineOf(keyNode)}`, key, closestKey(key, [...byName.keys()]));
    }
    const value = resolve(pair.value, doc, file);
    if (spec.kind === 'list') {
      const items = isSeq(value) ? value.items.map((i) => resolve(i, doc, file)) : [value];
      out.set(key, items.map((i) => scalarText(key, i, 'a list of values')));
    } else {
      if (isSeq(value)) throw invalidValue(key, `[list at ${lineOf(value)} of ${file}]`, 'one value, not a list');
      const raw = scalarText(key, value, 'one value');
      out.set(key, spec.kind === 'flag' ? parseBoolean(key, raw) : raw);
    }
  }
  return out;
}

function resolve(node: unknown, doc: Document, file: string): unknown {
  if (!(node instanceof Alias)) return node;
  const target = node.resolve(doc);
  if (target === undefined) throw configFileInvalid(file, `the alias *${node.source} names no anchor`);
  return target;
}

function isEmpty(node: { value: unknown; source?: string; type?: string }): boolean {
  // Under the failsafe schema `key:`, `key: ~` and `key: null` are the strings '', '~', 'null'.
  return node.type === 'PLAIN' && /^(|~|null|Null|NULL)$/.test(String(node.value));
}

function scalarText(key: string, node: unknown, expected: string): string {
  if (node === null || node === undefined) throw missingValue(key);
  if (!isScalar(node)) throw invalidValue(key, isMap(node as Node) ? '[mapping]' : '[not a value]', expected);
  if (isEmpty(node)) throw missingValue(key);
  if (typeof node.value !== 'string') throw invalidValue(key, `[${typeof node.value}]`, `${expected} written as text`);
  return node.value;
}

/**
 * The option `key` was probably meant to be: the same name with `_` written as `-` or in another
 * case (`redis_url`, `REDIS-URL`), else the one option it begins (`jwt-secret-prev`), else the
 * nearest within an edit distance of 3.
 */
export function closestKey(key: string, names: readonly string[]): string | undefined {
  const folded = key.toLowerCase().replace(/_/g, '-').replace(/^-+/, '');
  if (names.includes(folded)) return folded;
  const extended = names.filter((n) => folded.length >= 4 && n.startsWith(folded));
  if (extended.length === 1) return extended[0];
  let best: string | undefined;
  let bestDistance = 4;
  for (const n of names) {
    const d = editDistance(folded, n, bestDistance);
    if (d < bestDistance) {
      best = n;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance of `a` and `b`, or `cap` once it is sure to reach it. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      row.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin >= cap) return cap;
    prev = row;
  }
  return Math.min(prev[b.length] as number, cap);
}
