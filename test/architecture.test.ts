/**
 * The layers of src/ (docs/architecture.md): every import of every src/**\/*.ts file goes to its
 * own folder, down to a lower layer of its side or of the shared base, or to a same-layer folder
 * its row allows. The table is read from docs/architecture.md, so the page is the rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '..');

type Side = 'shared' | 'server' | 'client' | 'top';

interface Layer {
  readonly layer: number;
  readonly side: Side;
  readonly uses: readonly string[];
}

/**
 * Imports against the layers that stay until another change lands; each must still exist, so an
 * entry goes when its import does.
 */
const PENDING: readonly { file: string; imports: string; until: string }[] = [];

/** The rows of the "Layers" table: | `folder` | layer | side | also uses | what it holds |. */
function readLayers(markdown: string): Map<string, Layer> {
  const layers = new Map<string, Layer>();
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const m = /^`([a-z]+)`$/.exec(cells[1] ?? '');
    if (!m || !/^\d+$/.test(cells[2] ?? '')) continue;
    const side = cells[3] as Side;
    if (!['shared', 'server', 'client', 'top'].includes(side)) throw new Error(`docs/architecture.md: ${m[1]} has side ${JSON.stringify(cells[3])}`);
    const uses = [...(cells[4] ?? '').matchAll(/`([a-z]+)`/g)].map((u) => u[1] as string);
    layers.set(m[1] as string, { layer: Number(cells[2]), side, uses });
  }
  return layers;
}

/** The folder of src/ a path is in: `src/turn/server.ts` → turn, `src/log.ts` → log. */
function folderOf(srcRelative: string): string {
  const parts = srcRelative.split('/');
  return parts.length > 1 ? parts[0] as string : (parts[0] as string).replace(/(\.test)?\.ts$/, '');
}

/**
 * Why `file` (relative to src/) may not import `target` (relative to src/), or undefined when it
 * may. Test files may also reach the other side: they check that client and server agree.
 */
function violation(layers: ReadonlyMap<string, Layer>, file: string, target: string): string | undefined {
  const from = folderOf(file);
  const to = folderOf(target);
  const a = layers.get(from);
  const b = layers.get(to);
  if (!a) return `src/${from} has no row in docs/architecture.md`;
  if (!b) return `src/${to} has no row in docs/architecture.md`;
  if (from === to || a.uses.includes(to)) return undefined;
  const sided = (l: Layer): boolean => l.side === 'server' || l.side === 'client';
  if (sided(a) && sided(b) && a.side !== b.side) {
    return file.endsWith('.test.ts') ? undefined : `${from} (${a.side} side) may not use ${to} (${b.side} side)`;
  }
  if (b.layer === a.layer) return `${from} (layer ${a.layer}) may not use ${to}, a folder of the same layer it does not list`;
  if (b.layer > a.layer) return `${from} (layer ${a.layer}) may not use ${to} (layer ${b.layer}): imports go down`;
  return undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every module a file names: import (type or not), export … from, import(), require(). */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

const layers = readLayers(readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8'));
const SRC = path.join(ROOT, 'src');

test('every import in src/ follows the layers of docs/architecture.md', () => {
  const broken: string[] = [];
  const pendingSeen = new Set<string>();
  for (const abs of sourceFiles(SRC)) {
    const file = path.relative(SRC, abs).split(path.sep).join('/');
    for (const spec of importsOf(abs)) {
      if (!spec.startsWith('.')) continue;
      const target = path.relative(SRC, path.resolve(path.dirname(abs), spec)).split(path.sep).join('/');
      if (target.startsWith('..')) continue; // test/helpers and the like: not a layer of src/
      const why = violation(layers, file, target);
      if (why === undefined) continue;
      const pending = PENDING.find((p) => p.file === `src/${file}` && p.imports === spec);
      if (pending) {
        pendingSeen.add(`${pending.file} ${pending.imports}`);
        continue;
      }
      broken.push(`src/${file} imports ${spec}: ${why}`);
    }
  }
  assert.deepEqual(broken, [], `imports against docs/architecture.md:\n  ${broken.join('\n  ')}`);
  const gone = PENDING.filter((p) => !pendingSeen.has(`${p.file} ${p.imports}`));
  assert.deepEqual(gone, [], 'these PENDING entries no longer happen: delete them (and their note in docs/architecture.md)');
});

test('every folder of src/ has a row in docs/architecture.md', () => {
  const folders = new Set(sourceFiles(SRC).map((abs) => folderOf(path.relative(SRC, abs).split(path.sep).join('/'))));
  assert.deepEqual([...folders].filter((f) => !layers.has(f)).sort(), []);
  assert.deepEqual([...layers.keys()].filter((f) => !folders.has(f)).sort(), [], 'rows of folders that no longer exist');
});

test('the rule refuses imports upwards, across sides and between unlisted siblings', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['stun/message.ts', 'turn/server.ts', /stun \(layer 1\) may not use turn \(layer 5\): imports go down/],
    ['turn/relay.ts', 'server/stunServer.ts', /imports go down/],
    ['config/config.ts', 'transport/udp.ts', /imports go down/],
    ['session/services.ts', 'api/sessions.ts', /imports go down/],
    ['signaling/start.ts', 'broker/embedded.ts', /imports go down/],
    ['api/sessions.ts', 'signaling/service.ts', /same layer it does not list/],
    ['cluster/registry.ts', 'session/errors.ts', /same layer it does not list/],
    ['sdk/app.ts', 'auth/token.ts', /client side\) may not use auth \(server side\)/],
    ['sdk/signaling.ts', 'config/config.ts', /client side\) may not use config \(server side\)/],
    ['turn/server.ts', 'sdk/errors.ts', /server side\) may not use sdk \(client side\)/],
    ['stun/ip.ts', 'cli/main.ts', /imports go down/],
    ['turn/server.test.ts', 'server/roles.ts', /imports go down/],
    ['newfolder/x.ts', 'stun/index.ts', /src\/newfolder has no row/],
  ];
  for (const [file, target, why] of bad) assert.match(violation(layers, file, target) ?? 'allowed', why, `${file} → ${target}`);

  const good: Array<[string, string]> = [
    ['turn/server.ts', 'turn/relay.ts'],
    ['turn/server.ts', 'stun/index.ts'],
    ['turn/server.ts', 'transport/ingress.ts'],
    ['server/stunServer.ts', 'turn/handler.ts'],
    ['session/actions.ts', 'cluster/placement.ts'],
    ['broker/embedded.ts', 'signaling/acl.ts'],
    ['log.ts', 'config/config.ts'],
    ['sdk/natDetectNode.ts', 'nat/discovery.ts'],
    ['sdk/errors.ts', 'errors.ts'],
    ['cli/connect.ts', 'sdk/app.ts'],
    ['cli/serve.ts', 'server/node.ts'],
    ['sdk/token.test.ts', 'auth/token.ts'],
  ];
  for (const [file, target] of good) assert.equal(violation(layers, file, target), undefined, `${file} → ${target}`);
});
