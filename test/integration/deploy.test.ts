/** The deployment files stay true to the options: every P2PD_* variable and every `serve` line parses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SERVE_OPTIONS, envName } from '../../src/config/options.ts';
import { loadConfig } from '../../src/config/config.ts';

const manifest = readFileSync(new URL('../../deploy/k8s/p2pd.yaml', import.meta.url), 'utf8');
const known = new Set(SERVE_OPTIONS.map((o) => envName(o.name)));

test('every P2PD_* variable of the Kubernetes manifest is a serve option', () => {
  const used = new Set([...manifest.matchAll(/\b(P2PD_[A-Z_]+)\b/g)].map((m) => m[1] as string));
  assert.ok(used.size >= 5);
  for (const name of used) assert.ok(known.has(name), `${name} is not an option of p2pd serve`);
});

test('every serve command line of the manifest is accepted by the option parser', () => {
  const lines = [...manifest.matchAll(/args: (\[.*\])/g)].map((m) => JSON.parse(m[1] as string) as string[]);
  assert.ok(lines.length >= 2);
  for (const args of lines) {
    assert.equal(args[0], 'serve');
    assert.doesNotThrow(() => loadConfig(args.slice(1), { P2PD_REDIS_URL: 'redis://redis:6379', P2PD_MQTT_URL: 'mqtt://emqx:1883' }), args.join(' '));
  }
});

test('every metric on the Grafana dashboard is defined in src/metrics', async () => {
  const { registry } = await import('../../src/metrics/metrics.ts');
  // (Prometheus targets carry `expr`; the top-talkers panels read GET /v1/usage instead.)
  const dash = JSON.parse(readFileSync(new URL('../../deploy/grafana/p2pd-dashboard.json', import.meta.url), 'utf8')) as { panels: { targets: { expr?: string }[] }[] };
  const defined = new Set(registry.getMetricsAsArray().map((m) => m.name));
  const used = new Set<string>();
  for (const p of dash.panels) for (const t of p.targets) for (const m of (t.expr ?? '').matchAll(/\b((?:p2p|stun|turn|signaling|sessions?|nat)_[a-z_]+?)(?:_bucket)?\b/g)) used.add(m[1] as string);
  assert.ok(used.size >= 10);
  for (const name of used) assert.ok(defined.has(name), `${name} is on the dashboard but not defined`);
});
