import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeInfo } from './nodeInfo.ts';
import { MAX_SIGNALING_SERVERS, signalingServers } from './signalingServers.ts';

const node = (id: string, over: Partial<NodeInfo> = {}): NodeInfo => ({
  id, region: 'eu', roles: ['signal', 'api'], host: '192.0.2.1', port: 3478, signal: [`ws://${id}:8080/mqtt`, `mqtt://${id}:1883`],
  load: { allocations: 0, bps: 0 }, capacity: { allocations: 0, bps: 0 }, draining: false,
  heartbeatAt: 0, heartbeatMs: 5000, ...over,
});

const first = (list: { urls: readonly string[] }[]): string[] => list.map((s) => s.urls[0] as string);

test("the caller's region first, then the others; only signal nodes that advertise URLs and are not draining", () => {
  const nodes = [node('us1', { region: 'us' }), node('eu1'), node('eu2'), node('turn1', { roles: ['turn'] }), node('eu3', { draining: true }), node('eu4', { signal: [] })];
  const list = signalingServers(nodes, 'app-1', 'eu');
  assert.deepEqual(new Set(first(list).slice(0, 2)), new Set(['ws://eu1:8080/mqtt', 'ws://eu2:8080/mqtt']));
  assert.deepEqual(first(list).slice(2), ['ws://us1:8080/mqtt']);
  assert.deepEqual(list[2]?.urls, ['ws://us1:8080/mqtt', 'mqtt://us1:1883'], 'every URL of a node, in its order');
  assert.deepEqual(signalingServers(nodes, 'app-1', 'asia').length, 3, 'a region without nodes gets all of them');
});

test('the same caller gets the same order from any node; the clients of a dead node spread over the others', () => {
  const nodes = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => node(id));
  assert.deepEqual(signalingServers(nodes, 'cam-7', 'eu'), signalingServers([...nodes].reverse(), 'cam-7', 'eu'));
  // Clients whose first choice is `a`: where they go next, once it is gone.
  const next = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const list = first(signalingServers(nodes, `dev-${i}`, 'eu'));
    if (list[0] !== 'ws://a:8080/mqtt') continue;
    const second = list[1] as string;
    next.set(second, (next.get(second) ?? 0) + 1);
  }
  const counts = [...next.values()];
  assert.equal(counts.length, 5, 'every other node takes some');
  const total = counts.reduce((x, y) => x + y, 0);
  for (const c of counts) assert.ok(c > total / 5 / 2 && c < (total / 5) * 2, `an even spread: ${counts.join(', ')}`);
});

test(`at most ${MAX_SIGNALING_SERVERS} nodes, and none when no node advertises signaling`, () => {
  const many = Array.from({ length: 12 }, (_, i) => node(`n${i}`));
  assert.equal(signalingServers(many, 'x', 'eu').length, MAX_SIGNALING_SERVERS);
  assert.deepEqual(signalingServers([node('a', { signal: undefined })], 'x', 'eu'), []);
});
