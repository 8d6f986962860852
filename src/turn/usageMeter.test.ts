import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Allocation } from './allocation.ts';
import { TurnEvents } from './events.ts';
import { hourOf, UsageMeter, type RelayUsage } from './usageMeter.ts';

const HOUR = Date.UTC(2026, 11, 2, 5);

function allocation(id: number, sessionId: string | undefined): Allocation {
  return new Allocation({
    id, tupleKey: id, client: { family: 4, address: '127.0.0.1', port: 40000 + id }, udp: undefined, stream: undefined,
    principal: { username: 'u', key: Buffer.alloc(16), sha256Integrity: false, sessionId, sub: 'app-1', expiresAtSec: undefined },
    quotaKey: undefined, grant: id, transactionId: '\0'.repeat(12), expiresAtSec: 0, bucket: undefined,
  });
}

function meter(now: { ms: number }): { m: UsageMeter; events: TurnEvents; batches: RelayUsage[][] } {
  const events = new TurnEvents();
  const batches: RelayUsage[][] = [];
  const m = new UsageMeter({ events, sink: (b) => batches.push(b), nowMs: () => now.ms, deleteFlushMs: 60_000 });
  return { m, events, batches };
}

test('reports what each session relayed since the last look, summed over its allocations', () => {
  const now = { ms: HOUR + 60_000 };
  const { m, events, batches } = meter(now);
  const a = allocation(1, 's1');
  const b = allocation(2, 's1');
  const c = allocation(3, 's2');
  for (const x of [a, b, c]) events.emit('allocationCreated', x);
  a.bytesTotal = 100; a.relayingSec = 2;
  b.bytesTotal = 50; b.relayingSec = 1;
  m.flush();
  assert.deepEqual(batches, [[{ sessionId: 's1', hourSec: HOUR / 1000, bytes: 150, relaySec: 3 }]]);
  a.bytesTotal = 130; a.relayingSec = 3;
  c.bytesTotal = 9; c.relayingSec = 1;
  m.flush();
  assert.deepEqual(batches[1], [{ sessionId: 's1', hourSec: HOUR / 1000, bytes: 30, relaySec: 1 }, { sessionId: 's2', hourSec: HOUR / 1000, bytes: 9, relaySec: 1 }]);
  m.flush();
  assert.equal(batches.length, 2, 'nothing new: no batch');
  m.stop();
});

test('a deleted allocation hands on its last counts; the next hour gets a row of its own', () => {
  const now = { ms: HOUR + 3_599_000 };
  const { m, events, batches } = meter(now);
  const a = allocation(1, 's1');
  events.emit('allocationCreated', a);
  a.bytesTotal = 10; a.relayingSec = 1;
  m.flush();
  now.ms += 2000; // the next hour
  a.bytesTotal = 25; a.relayingSec = 2;
  events.emit('allocationDeleted', a, 'refresh');
  a.bytesTotal = 999; // after the delete: never read
  m.stop();
  assert.deepEqual(batches, [
    [{ sessionId: 's1', hourSec: HOUR / 1000, bytes: 10, relaySec: 1 }],
    [{ sessionId: 's1', hourSec: HOUR / 1000 + 3600, bytes: 15, relaySec: 1 }],
  ]);
});

test('allocations whose credentials name no session are not metered', () => {
  const now = { ms: HOUR };
  const { m, events, batches } = meter(now);
  const a = allocation(1, undefined);
  events.emit('allocationCreated', a);
  a.bytesTotal = 500; a.relayingSec = 5;
  events.emit('allocationDeleted', a, 'expired');
  m.stop();
  assert.deepEqual(batches, []);
});

test('hourOf is the start of the hour in unix seconds', () => {
  assert.equal(hourOf(HOUR), HOUR / 1000);
  assert.equal(hourOf(HOUR + 3_599_999), HOUR / 1000);
  assert.equal(hourOf(HOUR + 3_600_000), HOUR / 1000 + 3600);
});
