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

// The shape of issue 13 (docs/deploy.md "Kubernetes"): documents read with the `yaml` package.
interface K8sDoc {
  readonly kind: string;
  readonly metadata: { readonly name: string };
  readonly data?: Record<string, string>;
  readonly spec?: Record<string, unknown>;
}
const docs = async (): Promise<K8sDoc[]> => {
  const { parseAllDocuments } = await import('yaml');
  return parseAllDocuments(manifest).map((d) => d.toJSON() as K8sDoc);
};
type PodSpec = { hostNetwork?: boolean; containers: { args: string[]; env?: { name: string; value?: string; valueFrom?: unknown }[]; ports?: { name: string; containerPort: number }[] }[] };
const podSpec = (d: K8sDoc): PodSpec => (d.spec as { template: { spec: PodSpec } }).template.spec;
const envOf = (all: K8sDoc[]): Record<string, string> => ({
  ...all.find((d) => d.kind === 'ConfigMap')?.data,
  P2PD_AUTH_SECRET: 'from-the-secret', P2PD_JWT_SECRET: 'from-the-secret',
});

test('the signaling Deployment scales on MQTT connections: its HPA reads a per-pod metric that p2pd defines', async () => {
  const all = await docs();
  const { registry } = await import('../../src/metrics/metrics.ts');
  const defined = new Set(registry.getMetricsAsArray().map((m) => m.name));
  const hpas = all.filter((d) => d.kind === 'HorizontalPodAutoscaler');
  const onConnections = hpas.filter((h) => (h.spec?.metrics as { type: string; pods?: { metric: { name: string } } }[]).some((m) => m.type === 'Pods' && m.pods?.metric.name === 'mqtt_clients_connected'));
  assert.equal(onConnections.length, 1);
  assert.ok(defined.has('mqtt_clients_connected'));
  const target = (onConnections[0]?.spec?.scaleTargetRef as { kind: string; name: string });
  const dep = all.find((d) => d.kind === target.kind && d.metadata.name === target.name);
  assert.ok(dep, `the HPA scales ${target.kind}/${target.name}, which is in the manifest`);
  const args = podSpec(dep).containers[0]?.args ?? [];
  const config = loadConfig(args.slice(1), envOf(all));
  assert.ok(config.roles.has('signal'), 'the Deployment it scales runs signaling');
  assert.ok(dep.spec?.template && (dep.spec.template as { metadata: { annotations: Record<string, string> } }).metadata.annotations['prometheus.io/scrape'] === 'true', 'its pods are scraped (the adapter reads Prometheus)');
});

test('signaling pods run the embedded broker as one fabric over a Redis Cluster, and advertise where clients reconnect', async () => {
  const all = await docs();
  const dep = all.find((d) => d.kind === 'Deployment' && podSpec(d).containers[0]?.args.includes('signal,api'));
  assert.ok(dep);
  const config = loadConfig((podSpec(dep).containers[0]?.args ?? []).slice(1), envOf(all));
  assert.equal(config.mqttUrl, undefined, 'no external broker: the embedded one');
  assert.equal(config.mqttFabric, 'redis');
  assert.ok(config.redisUrls.length >= 3, `a Redis Cluster's seed nodes: ${config.redisUrls.join(', ')}`);
  assert.ok(config.signalUrls.length > 0 && config.signalUrls.every((u) => /^(wss?|mqtts?):/.test(u)));
  const ports = new Set(podSpec(dep).containers[0]?.ports?.map((p) => p.containerPort));
  assert.ok(ports.has(config.http.port) && ports.has(config.mqtt.port), 'HTTP (and /mqtt) and MQTT are container ports');
  const svc = all.find((d) => d.kind === 'Service' && (d.spec?.selector as Record<string, string>).plane === (dep.spec?.selector as { matchLabels: Record<string, string> }).matchLabels.plane);
  assert.ok(svc, 'a Service selects the signaling pods');
});

test('the TURN DaemonSet runs stun,turn with host networking and the host address advertised', async () => {
  const all = await docs();
  const ds = all.find((d) => d.kind === 'DaemonSet');
  assert.ok(ds);
  const spec = podSpec(ds);
  assert.equal(spec.hostNetwork, true);
  const config = loadConfig((spec.containers[0]?.args ?? []).slice(1), envOf(all));
  assert.ok(config.roles.has('turn') && config.roles.has('stun') && !config.roles.has('signal'));
  assert.ok(spec.containers[0]?.env?.some((e) => e.name === 'P2PD_EXTERNAL_IP' && e.valueFrom !== undefined));
});
