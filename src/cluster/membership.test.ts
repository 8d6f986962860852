import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Membership, type NodeIdentity } from './membership.ts';
import { MemoryNodeRegistry, type NodeRegistry } from './registry.ts';
import type { NodeInfo } from './nodeInfo.ts';

const identity = (id: string): NodeIdentity => ({
  id, region: 'eu', roles: ['stun', 'turn'], host: '127.0.0.1', port: 3478, capacity: { allocations: 0, bps: 0 },
});

function member(registry: NodeRegistry, id: string, clock: { now: number }, load = { allocations: 0, bps: 0 }): Membership {
  return new Membership({ registry, self: identity(id), heartbeatMs: 1000, load: async () => load, nowMs: () => clock.now });
}

test('nodes see each other, with load, and a node silent for 3 heartbeats drops out', async () => {
  const clock = { now: 1_000_000 };
  const registry = new MemoryNodeRegistry();
  const a = member(registry, 'a', clock, { allocations: 7, bps: 1000 });
  const b = member(registry, 'b', clock);
  await a.beat();
  await b.beat();
  assert.deepEqual(b.nodes().map((n) => n.id).sort(), ['a', 'b']);
  assert.deepEqual(b.node('a')?.load, { allocations: 7, bps: 1000 });
  // a falls silent; b keeps beating.
  for (let i = 0; i < 3; i++) {
    clock.now += 1000;
    await b.beat();
    assert.ok(b.node('a'), `still there after ${i + 1} missed heartbeat(s)`);
  }
  clock.now += 1;
  await b.beat();
  assert.equal(b.node('a'), undefined);
  assert.deepEqual([...b.regions()], ['eu']);
});

test('draining shows at once here and in the registry; stop removes the entry', async () => {
  const clock = { now: 1_000_000 };
  const registry = new MemoryNodeRegistry();
  const a = member(registry, 'a', clock);
  const b = member(registry, 'b', clock);
  await a.beat();
  await b.beat();
  await a.drain();
  assert.equal(a.node('a')?.draining, true);
  await b.beat();
  assert.equal(b.node('a')?.draining, true);
  await a.stop();
  await b.beat();
  assert.equal(b.node('a'), undefined);
  assert.deepEqual((await registry.list()).map((n: NodeInfo) => n.id), ['b']);
});

test('while the registry cannot be read, others are judged as of the last good read', async () => {
  const clock = { now: 1_000_000 };
  let down = false;
  const inner = new MemoryNodeRegistry();
  const flaky: NodeRegistry = {
    healthy: true,
    heartbeat: (n) => (down ? Promise.reject(new Error('down')) : inner.heartbeat(n)),
    list: () => (down ? Promise.reject(new Error('down')) : inner.list()),
    remove: (id) => inner.remove(id),
    shutdown: () => inner.shutdown(),
  };
  const a = member(flaky, 'a', clock);
  const b = member(flaky, 'b', clock);
  await a.beat();
  await b.beat();
  down = true;
  clock.now += 60_000;
  await b.beat();
  assert.ok(b.node('a'), 'not known dead: kept');
  down = false;
  await b.beat();
  assert.equal(b.node('a'), undefined, 'known silent once the registry reads again');
});
