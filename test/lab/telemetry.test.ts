import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTelemetry, metricValue, renderTelemetry } from '../../lab/telemetry.ts';
import type { Attempt } from '../../lab/report.ts';

const base = { camera: 'port-restricted', app: 'symmetric', stack: 'node', delayMs: 0, lossPct: 0 } as const;
const attempts: Attempt[] = [
  { ...base, ok: true, path: 'direct', setupMs: 500, natType: { camera: 'port-restricted cone', app: 'symmetric' } },
  { ...base, ok: true, path: 'relay', setupMs: 700, natType: { camera: 'port-restricted cone' } },
  { ...base, ok: false, error: 'ICE_FAILED' },
];
const metrics = [
  '# HELP p2p_connections_total x', 'p2p_connections_total{path="direct"} 1', 'p2p_connections_total{path="relay"} 1',
  'p2p_setup_seconds_count 2', 'p2p_latency_seconds_count 9',
  'nat_type_total{type="port-restricted cone"} 2', 'nat_type_total{type="symmetric"} 2',
].join('\n');

test('metricValue reads one sample, summing repeated lines; absent is 0', () => {
  assert.equal(metricValue(metrics, 'p2p_connections_total', 'path="relay"'), 1);
  assert.equal(metricValue(metrics, 'p2p_setup_seconds_count'), 2);
  assert.equal(metricValue(metrics, 'nope'), 0);
});

test('the service agrees when paths and sessions match and it counted every NAT type the lab saw', () => {
  const rows = compareTelemetry(metrics, attempts);
  assert.ok(rows.every((r) => r.agree), JSON.stringify(rows));
  assert.match(renderTelemetry(rows), /\| `p2p_connections_total\{path="direct"\}` \| 1 \| 1 \| yes \|/);
});

test('a missing session, a path counted wrong or an uncounted NAT type disagree', () => {
  const wrong = metrics.replace('path="direct"} 1', 'path="direct"} 0').replace('type="symmetric"} 2', 'type="symmetric"} 0').replace('p2p_latency_seconds_count 9', 'p2p_latency_seconds_count 1');
  const bad = compareTelemetry(wrong, attempts).filter((r) => !r.agree).map((r) => r.what);
  assert.deepEqual(bad.sort(), ['nat_type_total{type="symmetric"} (≥ the lab\'s)', 'p2p_connections_total{path="direct"}', 'p2p_latency_seconds_count (≥ one per session)'].sort());
});
