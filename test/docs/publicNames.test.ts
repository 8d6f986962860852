/**
 * The repository's docs/ carry every public name (issue 12 item 4): each command and option, HTTP
 * route, MQTT topic and message type, metric and Redis key in the code appears in docs/ (the
 * reference is docs/reference.md), and the code's comments cite docs/ or RFCs, never files outside
 * the repository. Names are read from the code itself, so a new name without docs fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONNECT_HELP } from '../../src/cli/connect.ts';
import { DEVICE_HELP } from '../../src/cli/device.ts';
import { NAT_TYPE_HELP } from '../../src/cli/natType.ts';
import { SERVE_HELP } from '../../src/cli/serve.ts';
import { TOKEN_HELP } from '../../src/cli/token.ts';
import { MESSAGE_TYPES } from '../../src/signaling/message.ts';
import { PRESENCE_PREFIX, SERVER_TOPIC, SIGNAL_PREFIX } from '../../src/signaling/topics.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

function files(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      if (name === 'node_modules' || name.startsWith('.') || name === 'dist') continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (keep(p)) out.push(p);
    }
  };
  walk(join(ROOT, dir));
  return out;
}

const docs = [...files('docs', (f) => f.endsWith('.md')).map((f) => readFileSync(f, 'utf8')), read('README.md')].join('\n');
const missing = (names: Iterable<string>): string[] => [...new Set(names)].filter((n) => !docs.includes(n)).sort();

test('every command and each of its options is in docs/', () => {
  const helps = { serve: SERVE_HELP, token: TOKEN_HELP, connect: CONNECT_HELP, device: DEVICE_HELP, 'nat-type': NAT_TYPE_HELP };
  const names: string[] = [];
  for (const [cmd, help] of Object.entries(helps)) {
    names.push(`p2pd ${cmd}`);
    for (const m of help.matchAll(/--[a-z0-9][a-z0-9-]*/g)) if (m[0] !== '--help') names.push(m[0]);
  }
  assert.ok(names.length > 60, `read ${names.length} names: the help texts changed shape`);
  assert.deepEqual(missing(names), []);
});

test('every HTTP route is in docs/', () => {
  const routes: string[] = [];
  for (const f of files('src', (p) => p.endsWith('.ts') && !p.endsWith('.test.ts'))) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\.(?:get|post|put|delete|patch)(?:<[^>]*>)?\(\s*'(\/[^']*)'/g)) routes.push((m[1] as string).replace(/:id\b/g, '{id}'));
  }
  assert.ok(routes.includes('/v1/sessions') && routes.includes('/metrics'), routes.join(' '));
  assert.deepEqual(missing(routes.filter((r) => !r.startsWith('/assets/'))), []);
});

test('every MQTT topic and message type is in docs/', () => {
  const names = [SERVER_TOPIC, `${SIGNAL_PREFIX}app/`, `${SIGNAL_PREFIX}device/`, PRESENCE_PREFIX, ...MESSAGE_TYPES.map((t) => `\`${t}\``)];
  assert.deepEqual(missing(names), []);
});

test('every metric and every Redis key is in docs/', () => {
  const metrics = [...read('src/metrics/metrics.ts').matchAll(/name: '([a-z_]+)'/g)].map((m) => m[1] as string);
  assert.ok(metrics.length > 20, `read ${metrics.length} metrics`);
  const keys = ['session:{', 'session_updates:', 'p2pd:nodes', 'usage:{'];
  assert.deepEqual(missing([...metrics, ...keys]), []);
});

test('the code cites docs/ that exist, and nothing outside the repository', () => {
  const bad: string[] = [];
  const sources = ['src', 'lab', 'test', 'bench', 'scripts', 'web/src', 'deploy'].flatMap((d) => (existsSync(join(ROOT, d)) ? files(d, (p) => /\.(ts|js|sh|ya?ml|conf|c|json)$/.test(p)) : []));
  for (const f of [...sources, join(ROOT, 'README.md'), ...files('docs', (p) => p.endsWith('.md'))]) {
    const rel = relative(ROOT, f);
    if (rel === 'test/docs/publicNames.test.ts') continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\b(CONTRACT|DESIGN|STYLE)\.md/g)) bad.push(`${rel} cites ${m[0]}, which is not in this repository`);
    for (const m of text.matchAll(/\bdocs\/([a-z0-9-]+\.md)/g)) if (!existsSync(join(ROOT, 'docs', m[1] as string))) bad.push(`${rel} cites docs/${m[1]}, which does not exist`);
  }
  assert.deepEqual(bad, []);
});
