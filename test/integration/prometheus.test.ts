/** The shipped alert rules: valid for promtool, their unit tests pass, every metric they use exists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { registry } from '../../src/metrics/metrics.ts';

const run = promisify(execFile);
const DIR = new URL('../../deploy/prometheus/', import.meta.url).pathname;

test('promtool check rules accepts deploy/prometheus/alerts.yml', async () => {
  const { stdout } = await run('promtool', ['check', 'rules', 'alerts.yml'], { cwd: DIR });
  assert.match(stdout, /SUCCESS/);
});

test('promtool test rules passes, HighTurnRatio and LowConnectionSuccessRate included', async () => {
  const { stdout } = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: DIR });
  assert.match(stdout, /SUCCESS/);
  const rules = readFileSync(`${DIR}alerts.yml`, 'utf8');
  assert.match(rules, /alert: HighTurnRatio/);
  assert.match(rules, /alert: LowConnectionSuccessRate/);
});

test('every p2pd metric an alert uses is defined in src/metrics', () => {
  const rules = readFileSync(`${DIR}alerts.yml`, 'utf8');
  const used = new Set([...rules.matchAll(/\b((?:p2p|stun|turn|signaling|sessions?)_[a-z_]+?)(?:_bucket)?\b/g)].map((m) => m[1] as string));
  const defined = new Set(registry.getMetricsAsArray().map((m) => m.name));
  assert.ok(used.size >= 5);
  for (const name of used) assert.ok(defined.has(name), `${name} is used by an alert but not defined`);
});
