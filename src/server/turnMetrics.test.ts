import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Allocation } from '../turn/allocation.ts';
import { TurnEvents } from '../turn/events.ts';
import { turnAuthFailuresTotal, turnDroppedTotal, turnLimitRefusalsTotal, turnPeerRefusedTotal, turnSessionsActive, turnSessionsTotal } from '../metrics/metrics.ts';
import { countTurnEvents, turnRelayCounters } from './turnMetrics.ts';

/** The value of one series of a metric now (after its collect hook ran). */
async function value(metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const v = values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

test('allocation and refusal events of the TURN server move the TURN metrics', async () => {
  const events = new TurnEvents();
  countTurnEvents(events);
  const before = {
    active: await value(turnSessionsActive), total: await value(turnSessionsTotal),
    auth: await value(turnAuthFailuresTotal, { reason: 'stale_nonce' }),
    limit: await value(turnLimitRefusalsTotal, { limit: 'user_quota' }),
    peer: await value(turnPeerRefusedTotal, { reason: 'own_port' }),
  };
  const a = {} as Allocation;
  events.emit('allocationCreated', a);
  events.emit('allocationCreated', a);
  events.emit('allocationRefreshed', a, 600);
  events.emit('allocationDeleted', a, 'expired');
  events.emit('authRefused', 'stale_nonce');
  events.emit('limitRefused', 'user_quota');
  events.emit('peerRefused', 'own_port');
  assert.equal(await value(turnSessionsActive) - before.active, 1);
  assert.equal(await value(turnSessionsTotal) - before.total, 2);
  assert.equal(await value(turnAuthFailuresTotal, { reason: 'stale_nonce' }) - before.auth, 1);
  assert.equal(await value(turnLimitRefusalsTotal, { limit: 'user_quota' }) - before.limit, 1);
  assert.equal(await value(turnPeerRefusedTotal, { reason: 'own_port' }) - before.peer, 1);
});

test("the relay's plain counts reach turn_dropped_packets_total at the next scrape", async () => {
  const before = await value(turnDroppedTotal, { reason: 'no_channel' });
  const counters = turnRelayCounters();
  counters.drops.no_channel.count += 3;
  assert.equal(await value(turnDroppedTotal, { reason: 'no_channel' }) - before, 3);
});
