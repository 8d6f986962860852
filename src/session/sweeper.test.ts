import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySessionStore } from './memoryStore.ts';
import { newSession } from './model.ts';
import { onSessionClosed } from './store.ts';
import { MISSED_INTERVALS, SessionSweeper } from './sweeper.ts';

const INTERVAL_MS = 300_000;
const T0 = 1_750_000_000_000;

function setup() {
  let now = T0;
  const store = new MemorySessionStore({ nowMs: () => now });
  const sweeper = new SessionSweeper({ store, intervalMs: INTERVAL_MS, nowMs: () => now, batch: 2 });
  const add = (id: string, lastSeenSec: number) => store.create({
    ...newSession({ sessionId: id, deviceId: 'd', appId: 'a', stunServer: '', turnNode: 'n', region: 'default', ttl: 86400, now: lastSeenSec }),
  });
  return { store, sweeper, add, advance: (ms: number) => { now += ms; }, nowSec: () => Math.floor(now / 1000) };
}

test('closes sessions silent for three intervals, as swept, and spares the rest', async () => {
  const { store, sweeper, add, advance, nowSec } = setup();
  const t0 = nowSec();
  await add('old-1', t0);
  await add('old-2', t0);
  await add('old-3', t0);
  await add('fresh', t0);
  advance(MISSED_INTERVALS * INTERVAL_MS - 1000);
  assert.equal((await sweeper.sweepOnce()).closed, 0, 'not yet three intervals');
  advance(2000);
  await store.update('fresh', { updatedAt: nowSec(), lastSeenAt: nowSec() });
  const released: string[] = [];
  onSessionClosed(store, (u) => released.push(u.sessionId));
  const r = await sweeper.sweepOnce();
  assert.equal(r.closed, 3, 'in batches of two, all three');
  assert.deepEqual(released.sort(), ['old-1', 'old-2', 'old-3']);
  assert.equal((await store.get('old-1'))?.closeReason, 'swept');
  assert.equal((await store.get('fresh'))?.status, 'connecting');
  assert.equal((await sweeper.sweepOnce()).closed, 0, 'a second sweep finds nothing');
});

test('two sweepers on one store close each stale session once', async () => {
  const { store, add, advance, nowSec } = setup();
  let now = T0;
  for (let i = 0; i < 50; i++) await add(`s${i}`, nowSec());
  advance(4 * INTERVAL_MS);
  now += 4 * INTERVAL_MS;
  const sweepers = [1, 2].map(() => new SessionSweeper({ store, intervalMs: INTERVAL_MS, nowMs: () => now, batch: 7 }));
  const closes: string[] = [];
  onSessionClosed(store, (u) => closes.push(u.sessionId));
  const [a, b] = await Promise.all(sweepers.map((s) => s.sweepOnce()));
  assert.equal((a?.closed ?? 0) + (b?.closed ?? 0), 50);
  assert.equal(closes.length, 50);
  assert.equal(new Set(closes).size, 50);
});

test('start() sweeps on its own timer and stop() ends it', async () => {
  const store = new MemorySessionStore();
  await store.create(newSession({ sessionId: 'x', deviceId: 'd', appId: 'a', stunServer: '', turnNode: 'n', region: 'r', ttl: 60, now: Math.floor(Date.now() / 1000) - 10 }));
  const sweeper = new SessionSweeper({ store, intervalMs: 50, staleAfterMs: 1000 });
  const closed = new Promise<string>((resolve) => onSessionClosed(store, (u) => resolve(u.sessionId)));
  sweeper.start();
  assert.equal(await closed, 'x');
  await sweeper.stop();
});
