/**
 * The Redis store's lazy index refresh (HOLD_REFRESH_MS in redisStore.ts), on a fake clock: run
 * against a real redis-server (test/integration/sessions.store.test.ts) and a real Redis Cluster
 * (cluster.store.test.ts). What it pins: a signaling message (touch) rewrites a session's stale
 * index entry and its holds on its app's and device's counts only once HOLD_REFRESH_MS has passed
 * since they were last written, by whichever node; the creation counts as the first write; and
 * the sweeper's bound is the record's: a session is closed once its record was silent
 * `staleAfterMs`, never before, however far the index lags.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { newSession } from './model.ts';
import { HOLD_REFRESH_MS, RedisSessionStore } from './redisStore.ts';
import { SessionSweeper } from './sweeper.ts';

// The suite checks what the store does, not how fast (as the store suite's harnesses).
const COMMAND_TIMEOUT_MS = 5000;
const STALE_AFTER_MS = 10_000;

export function indexRefreshSuite(name: string, urls: () => Promise<readonly string[]>): void {
  describe(`Redis session indexes refreshed lazily: ${name}`, () => {
    // Whole seconds near the real time: the keys' own TTLs run on Redis' clock.
    const T0 = Math.floor(Date.now() / 1000) * 1000;
    let now = T0;
    const at = (sec: number): number => T0 / 1000 + sec;
    let a: RedisSessionStore;
    let b: RedisSessionStore;
    before(async () => {
      const u = await urls();
      [a, b] = [0, 1].map(() => new RedisSessionStore({ urls: u, commandTimeoutMs: COMMAND_TIMEOUT_MS, nowMs: () => now })) as [RedisSessionStore, RedisSessionStore];
      assert.ok(await a.ready(10_000) && await b.ready(10_000), 'stores ready');
    });
    after(async () => {
      await a?.shutdown();
      await b?.shutdown();
    });

    const listedBefore = async (sec: number, id: string): Promise<boolean> => (await a.findStale(sec, 10_000)).includes(id);

    test('a message rewrites the indexes only once 30 s have passed since any node wrote them; the sweeper goes by the record', async () => {
      assert.equal(HOLD_REFRESH_MS, 30_000);
      const appId = `app_lazy_${randomUUID().slice(0, 8)}`;
      const deviceId = `cam_lazy_${randomUUID().slice(0, 8)}`;
      const s = newSession({ sessionId: randomUUID(), deviceId, appId, stunServer: '', turnNode: 'n', region: 'default', ttl: 3600, now: at(0) });
      const sweeper = new SessionSweeper({ store: a, intervalMs: 60_000, staleAfterMs: STALE_AFTER_MS, nowMs: () => now });
      const event = { at: 0, kind: 'signal', what: 'offer' } as const;
      now = T0;
      await b.create(s);
      assert.equal(await listedBefore(at(1), s.sessionId), true, 'indexed at its creation');

      // 20 s on, a message on the other node: the creation was the indexes' first write.
      now = T0 + 20_000;
      await a.touch(s.sessionId, event, at(20));
      assert.equal((await a.get(s.sessionId))?.lastSeenAt, at(20), 'the record moves at every message');
      assert.equal(await listedBefore(at(1), s.sessionId), true, 'the index still holds the creation');
      // Its hold on the counts still ends 3600 s after the creation, 20 s before the record would.
      now = T0 + 3_599_000;
      assert.deepEqual([await a.countOpenForApp(appId), await a.countOpenForDevice(deviceId)], [1, 1]);
      now = T0 + 3_600_000;
      assert.deepEqual([await a.countOpenForApp(appId), await a.countOpenForDevice(deviceId)], [0, 0]);

      // The sweeper lists it from the lagging index but spares it: the record was seen 5 s ago.
      // (Other sessions in this Redis may be swept too: only this one is looked at.)
      now = T0 + 25_000;
      assert.ok((await sweeper.sweepOnce()).examined >= 1);
      assert.equal((await a.get(s.sessionId))?.status, 'connecting');

      // 30 s after the creation: due, on whichever node.
      now = T0 + 30_000;
      await b.touch(s.sessionId, event, at(30));
      assert.equal(await listedBefore(at(30), s.sessionId), false, 'the index moved to the message');
      now = T0 + 3_629_000;
      assert.equal(await a.countOpenForApp(appId), 1, 'the hold now ends 3600 s after that message');
      assert.equal(await a.countOpenForDevice(deviceId), 1);

      // Another message 10 s later on the other node: not due (the record says when they were written).
      now = T0 + 40_000;
      await a.touch(s.sessionId, event, at(40));
      assert.equal(await listedBefore(at(31), s.sessionId), true, 'the index kept the message at 30 s');
      assert.equal(await listedBefore(at(40 - 30), s.sessionId), false, 'never more than 30 s behind the record');

      // Silent since 40 s: spared until the record is STALE_AFTER_MS old, closed at once after.
      now = T0 + 40_000 + STALE_AFTER_MS;
      await sweeper.sweepOnce();
      assert.equal((await b.get(s.sessionId))?.status, 'connecting', 'the record was seen exactly staleAfter ago');
      now = T0 + 41_000 + STALE_AFTER_MS;
      await sweeper.sweepOnce();
      assert.equal((await b.get(s.sessionId))?.closeReason, 'swept');
      assert.equal(await listedBefore(at(100), s.sessionId), false, 'closed: out of the index');
    });

    test('a keepalive patch (update with lastSeenAt) writes the indexes and counts as a refresh', async () => {
      const s = newSession({ sessionId: randomUUID(), deviceId: 'd', appId: `app_${randomUUID().slice(0, 8)}`, stunServer: '', turnNode: 'n', region: 'default', ttl: 3600, now: at(0) });
      now = T0;
      await a.create(s);
      now = T0 + 100_000;
      await b.update(s.sessionId, { status: 'connected', updatedAt: at(100), lastSeenAt: at(100) });
      assert.equal(await listedBefore(at(100), s.sessionId), false, 'the patch moved the index at once');
      now = T0 + 120_000;
      await a.touch(s.sessionId, { at: 0, kind: 'signal', what: 'keepalive' }, at(120));
      assert.equal(await listedBefore(at(101), s.sessionId), true, '20 s after the patch: not due');
      await a.close(s.sessionId, 'deleted', at(120));
    });
  });
}
