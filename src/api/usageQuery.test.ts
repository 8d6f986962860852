import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { P2pdError } from '../errors.ts';
import { MAX_RANGE_HOURS, parseTime, parseUsageQuery } from './usageQuery.ts';

const NOW = Date.UTC(2026, 11, 2, 5, 30) / 1000;
const badRequest = (e: unknown): boolean => e instanceof P2pdError && e.code === 'BAD_REQUEST';

test('defaults to the last 24 hours, widened to whole hours, as JSON', () => {
  const q = parseUsageQuery({}, undefined, NOW);
  assert.equal(q.toHourSec, Date.UTC(2026, 11, 2, 6) / 1000);
  assert.equal(q.fromHourSec, Date.UTC(2026, 11, 1, 5) / 1000);
  assert.equal(q.format, 'json');
  assert.equal(q.limit, 1000);
  assert.equal(q.kind, undefined);
});

test('takes ISO 8601 times with a zone, bare dates and unix seconds', () => {
  assert.equal(parseTime('from', '2026-12-02T05:00:00Z'), Date.UTC(2026, 11, 2, 5) / 1000);
  assert.equal(parseTime('from', '2026-12-02T07:00:00.5+02:00'), Date.UTC(2026, 11, 2, 5) / 1000);
  assert.equal(parseTime('from', '2026-12-02'), Date.UTC(2026, 11, 2) / 1000);
  assert.equal(parseTime('from', '1796180400'), 1796180400);
  const q = parseUsageQuery({ from: '2026-12-02T05:10:00Z', to: '2026-12-02T06:00:00Z', kind: 'device', top: '10', limit: '50' }, undefined, NOW);
  assert.deepEqual({ ...q }, { fromHourSec: Date.UTC(2026, 11, 2, 5) / 1000, toHourSec: Date.UTC(2026, 11, 2, 6) / 1000, kind: 'device', top: 10, limit: 50, format: 'json' });
});

test('answers CSV for Accept: text/csv or format=csv; format wins over Accept', () => {
  assert.equal(parseUsageQuery({}, 'text/csv', NOW).format, 'csv');
  assert.equal(parseUsageQuery({}, 'application/json, text/csv;q=0.5', NOW).format, 'csv');
  assert.equal(parseUsageQuery({ format: 'csv' }, undefined, NOW).format, 'csv');
  assert.equal(parseUsageQuery({ format: 'json' }, 'text/csv', NOW).format, 'json');
  assert.equal(parseUsageQuery({}, 'application/json', NOW).format, 'json');
});

test('refuses malformed and unbounded queries with BAD_REQUEST', () => {
  const cases: Record<string, unknown>[] = [
    { from: 'yesterday' }, { from: '2026-13-45T99:99:99Z' }, { from: '2026-12-02T05:00:00' }, { from: '-5' }, { from: '1e9' },
    { from: '1796180400', to: '1796180400' }, { from: '1796184000', to: '1796180400' },
    { from: '0', to: String((MAX_RANGE_HOURS + 1) * 3600) },
    { kind: 'camera' }, { top: '0' }, { top: '1001' }, { top: 'ten' }, { limit: '10001' }, { limit: '-1' }, { format: 'xml' },
    { from: ['1', '2'] }, { sort: 'bytes' }, { to: '' },
  ];
  for (const c of cases) assert.throws(() => parseUsageQuery(c, undefined, NOW), badRequest, JSON.stringify(c));
  // Exactly the longest range is fine.
  assert.doesNotThrow(() => parseUsageQuery({ from: '0', to: String(MAX_RANGE_HOURS * 3600) }, undefined, NOW));
});

test('random query strings either parse within bounds or are BAD_REQUEST', () => {
  for (let i = 0; i < 2000; i++) {
    const pick = (): string => randomBytes(1 + (i % 12)).toString(i % 2 === 0 ? 'latin1' : 'base64');
    const query: Record<string, unknown> = {};
    for (const name of ['from', 'to', 'kind', 'top', 'limit', 'format']) if (Math.random() < 0.4) query[name] = pick();
    try {
      const q = parseUsageQuery(query, pick(), NOW);
      assert.ok(q.toHourSec > q.fromHourSec && (q.toHourSec - q.fromHourSec) / 3600 <= MAX_RANGE_HOURS);
      assert.ok(q.limit >= 1 && q.limit <= 10_000);
    } catch (e) {
      assert.ok(badRequest(e), String(e));
    }
  }
});

test('CSV rows quote what needs quoting (RFC 4180)', async () => {
  const { usageCsv } = await import('./usage.ts');
  assert.equal(usageCsv([{ hour: 'h', kind: 'app', id: 'a,"b"', relayBytes: 1, relaySeconds: 2 }]), 'hour,kind,id,relayBytes,relaySeconds\r\nh,app,"a,""b""",1,2\r\n');
});
