import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySessionStore } from './memoryStore.ts';
import { newSession, nowSec } from './model.ts';
import { UsageRecorder } from './usageRecorder.ts';
import { MemoryUsageStore } from './usageMemory.ts';
import type { UsageIncrement, UsageStore } from './usageStore.ts';
import { storeUnavailable } from '../errors.ts';

const H = Math.floor(Date.now() / 3_600_000) * 3600;

async function sessions(): Promise<MemorySessionStore> {
  const store = new MemorySessionStore();
  const base = { stunServer: '', turnNode: 'n', region: 'default', ttl: 3600, now: nowSec() };
  await store.create(newSession({ ...base, sessionId: 's1', appId: 'app-a', deviceId: 'cam-1' }));
  await store.create(newSession({ ...base, sessionId: 's2', appId: 'app-a', deviceId: 'cam-2' }));
  return store;
}

test('sums sessions into their app and device per hour, in one write', async () => {
  const usage = new MemoryUsageStore({ retentionDays: 35 });
  const writes: number[] = [];
  const counting: UsageStore = { add: (inc) => { writes.push(inc.length); return usage.add(inc); }, query: (q) => usage.query(q) };
  const r = new UsageRecorder({ sessions: await sessions(), usage: counting, delayMs: 60_000 });
  r.record([{ sessionId: 's1', hourSec: H, bytes: 100, relaySec: 2 }]);
  r.record([{ sessionId: 's2', hourSec: H, bytes: 50, relaySec: 1 }, { sessionId: 'gone', hourSec: H, bytes: 7, relaySec: 1 }]);
  await r.stop();
  assert.deepEqual(writes, [3]);
  const { rows } = await usage.query({ fromHourSec: H, toHourSec: H + 3600, limit: 10 });
  assert.deepEqual(rows.map((x) => [x.kind, x.id, x.relayBytes, x.relaySeconds]), [
    ['app', 'app-a', 150, 3], ['device', 'cam-1', 100, 2], ['device', 'cam-2', 50, 1],
  ]);
});

test('a failed write is kept and written with the next one', async () => {
  const usage = new MemoryUsageStore({ retentionDays: 35 });
  let fail = true;
  const flaky: UsageStore = {
    add: async (inc: readonly UsageIncrement[]) => { if (fail) throw storeUnavailable(); await usage.add(inc); },
    query: (q) => usage.query(q),
  };
  const r = new UsageRecorder({ sessions: await sessions(), usage: flaky, delayMs: 60_000 });
  r.record([{ sessionId: 's1', hourSec: H, bytes: 100, relaySec: 2 }]);
  await r.flush();
  fail = false;
  r.record([{ sessionId: 's1', hourSec: H, bytes: 1, relaySec: 0 }]);
  await r.stop();
  const { rows } = await usage.query({ fromHourSec: H, toHourSec: H + 3600, kind: 'device', limit: 10 });
  assert.deepEqual(rows.map((x) => [x.id, x.relayBytes, x.relaySeconds]), [['cam-1', 101, 2]]);
});
