/**
 * The one test suite every UsageStore passes: memory (usageMemory.test.ts) and a real
 * redis-server (test/integration/usage.store.test.ts). `open(nowMs)` returns a store with the
 * given clock for the retention (the Redis store's clock is the server's: the suite only uses
 * hours whose retention is plainly in the future or plainly past).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { HOUR_SEC, type UsageStore } from './usageStore.ts';

export interface UsageHarness {
  /** A store keeping `retentionDays`; stores of one harness share one backend. */
  open(retentionDays: number): Promise<UsageStore>;
  close(): Promise<void>;
}

const thisHour = (): number => Math.floor(Date.now() / 1000 / HOUR_SEC) * HOUR_SEC;

export function usageStoreSuite(name: string, makeHarness: () => Promise<UsageHarness>): void {
  describe(`UsageStore: ${name}`, () => {
    let harness: UsageHarness;
    let store: UsageStore;
    before(async () => {
      harness = await makeHarness();
      store = await harness.open(35);
    });
    after(() => harness?.close());

    test('adds batches per hour, app and device apart, and reads them back in order', async () => {
      const h = thisHour() - 10 * HOUR_SEC;
      const app = `app-${randomUUID()}`;
      const cam1 = `cam1-${randomUUID()}`;
      const cam2 = `cam2-${randomUUID()}`;
      await store.add([
        { hourSec: h, kind: 'app', id: app, bytes: 1000, relaySec: 3 },
        { hourSec: h, kind: 'device', id: cam1, bytes: 400, relaySec: 2 },
        { hourSec: h, kind: 'device', id: cam2, bytes: 600, relaySec: 1 },
      ]);
      await store.add([
        { hourSec: h, kind: 'app', id: app, bytes: 500, relaySec: 1 },
        { hourSec: h + HOUR_SEC, kind: 'device', id: cam1, bytes: 7, relaySec: 0 },
      ]);
      const all = await store.query({ fromHourSec: h, toHourSec: h + 2 * HOUR_SEC, limit: 100 });
      const mine = all.rows.filter((r) => [app, cam1, cam2].includes(r.id));
      assert.deepEqual(mine, [
        { hour: new Date(h * 1000).toISOString(), kind: 'app', id: app, relayBytes: 1500, relaySeconds: 4 },
        { hour: new Date(h * 1000).toISOString(), kind: 'device', id: cam2, relayBytes: 600, relaySeconds: 1 },
        { hour: new Date(h * 1000).toISOString(), kind: 'device', id: cam1, relayBytes: 400, relaySeconds: 2 },
        { hour: new Date((h + HOUR_SEC) * 1000).toISOString(), kind: 'device', id: cam1, relayBytes: 7, relaySeconds: 0 },
      ]);
      assert.equal(all.truncated, false);
    });

    test('the range end is exclusive; kind, top and limit bound the answer', async () => {
      const h = thisHour() - 20 * HOUR_SEC;
      const ids = Array.from({ length: 5 }, (_, i) => `cam${i}-${randomUUID()}`);
      await store.add(ids.map((id, i) => ({ hourSec: h, kind: 'device' as const, id, bytes: 100 * (i + 1), relaySec: 1 })));
      await store.add([{ hourSec: h, kind: 'app', id: `app-${randomUUID()}`, bytes: 1, relaySec: 1 }]);
      assert.deepEqual((await store.query({ fromHourSec: h + HOUR_SEC, toHourSec: h + 2 * HOUR_SEC, limit: 100 })).rows.filter((r) => ids.includes(r.id)), []);
      const top = await store.query({ fromHourSec: h, toHourSec: h + HOUR_SEC, kind: 'device', top: 2, limit: 100 });
      assert.deepEqual(top.rows.map((r) => r.id), [ids[4], ids[3]]);
      assert.equal(top.truncated, false);
      const cut = await store.query({ fromHourSec: h, toHourSec: h + HOUR_SEC, kind: 'device', limit: 3 });
      assert.deepEqual(cut.rows.map((r) => r.id), [ids[4], ids[3], ids[2]]);
      assert.equal(cut.truncated, true);
      const exact = await store.query({ fromHourSec: h, toHourSec: h + HOUR_SEC, kind: 'device', limit: 5 });
      assert.equal(exact.rows.length, 5);
      assert.equal(exact.truncated, false);
    });

    test('drops hours past the retention', async () => {
      const short = await harness.open(1);
      const old = thisHour() - 30 * HOUR_SEC; // ended more than a day ago
      const id = `cam-${randomUUID()}`;
      await short.add([{ hourSec: old, kind: 'device', id, bytes: 5, relaySec: 1 }]);
      const got = await short.query({ fromHourSec: old, toHourSec: old + HOUR_SEC, limit: 100 });
      assert.deepEqual(got.rows.filter((r) => r.id === id), []);
    });

    test('an empty range answers no rows', async () => {
      const h = thisHour() + 100 * HOUR_SEC;
      assert.deepEqual(await store.query({ fromHourSec: h, toHourSec: h + 3 * HOUR_SEC, limit: 10 }), { rows: [], truncated: false });
    });
  });
}
