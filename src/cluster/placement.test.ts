import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { NodeInfo } from './nodeInfo.ts';
import { hrwScore, pickStunNodes, pickTurnNode, rendezvousOrder } from './placement.ts';

const node = (id: string, over: Partial<NodeInfo> = {}): NodeInfo => ({
  id, region: 'eu', roles: ['stun', 'turn'], host: '127.0.0.1', port: 3478,
  load: { allocations: 0, bps: 0 }, capacity: { allocations: 0, bps: 0 }, draining: false,
  heartbeatAt: 0, heartbeatMs: 5000, ...over,
});

test('every caller picks the same node for a session, whatever order it lists nodes in', () => {
  const nodes = ['a', 'b', 'c', 'd'].map((id) => node(id));
  for (let i = 0; i < 200; i++) {
    const id = randomUUID();
    assert.equal(pickTurnNode(nodes, id, 'eu')?.id, pickTurnNode([...nodes].reverse(), id, 'eu')?.id);
  }
  assert.equal(hrwScore('x', 'a'), hrwScore('x', 'a'));
});

test('spreads sessions evenly and moves only the lost node\'s sessions when one leaves', () => {
  const nodes = ['a', 'b', 'c', 'd'].map((id) => node(id));
  const ids = Array.from({ length: 4000 }, () => randomUUID());
  const before = new Map(ids.map((id) => [id, pickTurnNode(nodes, id, 'eu')?.id]));
  const counts = new Map<string, number>();
  for (const n of before.values()) counts.set(n as string, (counts.get(n as string) ?? 0) + 1);
  for (const c of counts.values()) assert.ok(c > 800 && c < 1200, `uneven: ${[...counts.values()]}`);
  const without = nodes.filter((n) => n.id !== 'c');
  for (const id of ids) {
    const after = pickTurnNode(without, id, 'eu')?.id;
    if (before.get(id) !== 'c') assert.equal(after, before.get(id));
    else assert.notEqual(after, 'c');
  }
});

test('skips draining nodes, nodes at capacity and nodes without the turn role', () => {
  const nodes = [
    node('draining', { draining: true }),
    node('full', { load: { allocations: 5, bps: 0 }, capacity: { allocations: 5, bps: 0 } }),
    node('saturated', { load: { allocations: 0, bps: 100 }, capacity: { allocations: 0, bps: 100 } }),
    node('stun-only', { roles: ['stun'] }),
    node('ok', { load: { allocations: 4, bps: 99 }, capacity: { allocations: 5, bps: 100 } }),
  ];
  for (let i = 0; i < 50; i++) assert.equal(pickTurnNode(nodes, randomUUID(), 'eu')?.id, 'ok');
  assert.equal(pickTurnNode(nodes.slice(0, 4), 'x', 'eu'), undefined);
});

test('prefers the caller\'s region and falls back to any region', () => {
  const nodes = [node('eu-1'), node('us-1', { region: 'us' }), node('us-2', { region: 'us' })];
  for (let i = 0; i < 50; i++) assert.match(pickTurnNode(nodes, randomUUID(), 'us')?.id ?? '', /^us-/);
  assert.equal(pickTurnNode(nodes, 'x', 'ap')?.region !== undefined, true);
  assert.equal(pickTurnNode([node('eu-1', { draining: true }), node('us-1', { region: 'us' })], 'x', 'eu')?.id, 'us-1');
});

test('STUN: nearest region first, another region as fallback', () => {
  const nodes = [node('eu-1'), node('eu-2'), node('us-1', { region: 'us' }), node('eu-d', { draining: true })];
  const [first, second, third] = pickStunNodes(nodes, 'session-1', 'eu');
  assert.equal(first?.region, 'eu');
  assert.equal(second?.id, 'us-1');
  assert.equal(third, undefined);
  assert.deepEqual(pickStunNodes([node('eu-1')], 's', 'eu').map((n) => n.id), ['eu-1'], 'one region: no fallback');
  assert.deepEqual(pickStunNodes(nodes, 's', 'ap').length, 2, 'unknown region: any, plus another region');
  assert.deepEqual(rendezvousOrder('k', []), []);
});
