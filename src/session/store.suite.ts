/**
 * The one test suite every SessionStore passes: memory (memoryStore.test.ts), a real redis-server
 * and a real Redis Cluster (test/integration/sessions.store.test.ts, cluster.store.test.ts).
 * `open()` must return stores sharing one backend: two calls stand for two nodes.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { newSession, nowSec, TRACE_MAX_EVENTS, type Session, type SessionUpdate } from './model.ts';
import { P2pdError } from '../errors.ts';
import type { SessionStore } from './store.ts';

export interface StoreHarness {
  open(): Promise<SessionStore>;
  close(): Promise<void>;
}

const sample = (over: Partial<Session> = {}): Session => ({
  ...newSession({
    sessionId: randomUUID(), deviceId: 'device_1', appId: 'app_1', stunServer: 'stun:127.0.0.1:3478',
    turnNode: 'node-a', region: 'default', ttl: 3600, now: nowSec(),
  }),
  ...over,
});

/** Resolves with the updates `store` hears for `sessionId` once `count` arrived (or after `ms`). */
function collect(store: SessionStore, sessionId: string, count: number, ms = 2000): Promise<SessionUpdate[]> {
  return new Promise((resolve) => {
    const got: SessionUpdate[] = [];
    const off = store.onUpdate((u) => {
      if (u.sessionId !== sessionId) return;
      got.push(u);
      if (got.length === count) finish();
    });
    const timer = setTimeout(() => finish(), ms);
    function finish(): void {
      clearTimeout(timer);
      off();
      resolve(got);
    }
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function sessionStoreSuite(name: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`SessionStore: ${name}`, () => {
    let harness: StoreHarness;
    let a: SessionStore;
    let b: SessionStore;
    before(async () => {
      harness = await makeHarness();
      a = await harness.open();
      b = await harness.open();
    });
    after(async () => {
      await a?.shutdown();
      await b?.shutdown();
      await harness?.close();
    });
    afterEach(async () => {
      // Let in-flight pub/sub messages land before the next test counts them.
      await sleep(20);
    });

    test('a created session reads back whole from another node', async () => {
      const s = sample({ turnAllocation: '' });
      await a.create(s);
      assert.deepEqual(await b.get(s.sessionId), s);
      assert.equal(a.healthy, true);
    });

    test('refuses a duplicate id with SESSION_EXISTS', async () => {
      const s = sample();
      await a.create(s);
      await assert.rejects(b.create({ ...s, appId: 'app_2' }), (e: unknown) => e instanceof P2pdError && e.code === 'SESSION_EXISTS' && e.statusCode === 409);
      assert.equal((await a.get(s.sessionId))?.appId, 'app_1', 'the first record is untouched');
    });

    test('unknown sessions: get and update give undefined, close false, trace empty', async () => {
      const id = randomUUID();
      assert.equal(await a.get(id), undefined);
      assert.equal(await a.update(id, { updatedAt: nowSec(), status: 'connected' }), undefined);
      assert.equal(await a.close(id, 'deleted', nowSec()), false);
      await a.appendTrace(id, { at: Date.now(), kind: 'api', what: 'x' });
      assert.deepEqual(await a.trace(id), []);
      assert.equal(await a.get(id), undefined, 'appending to an unknown session creates nothing');
    });

    test('a status change is published to every node and traced in order', async () => {
      const s = sample();
      const heardOnB = collect(b, s.sessionId, 3);
      await a.create(s);
      const t = nowSec();
      await a.update(s.sessionId, { updatedAt: t, lastSeenAt: t }); // keepalive: no status change, no update
      const up = await a.update(s.sessionId, { status: 'connected', turnAllocation: '127.0.0.1:50000', updatedAt: t });
      assert.equal(up?.status, 'connected');
      assert.equal(up?.turnAllocation, '127.0.0.1:50000');
      assert.equal(await a.close(s.sessionId, 'bye', t), true);
      const updates = await heardOnB;
      assert.deepEqual(updates.map((u) => u.status), ['connecting', 'connected', 'closed']);
      assert.deepEqual(updates[2], { ...updates[2], sessionId: s.sessionId, turnNode: 'node-a', deviceId: 'device_1', appId: 'app_1', reason: 'bye' });
      assert.ok(updates.every((u) => typeof u.at === 'number' && u.at > 1e12), 'update times are unix ms');
      const trace = await b.trace(s.sessionId);
      assert.deepEqual(trace.map((e) => e.what), ['new→connecting', 'connecting→connected', 'connected→closed']);
      assert.deepEqual(trace[2]?.detail, { reason: 'bye' });
      assert.ok(trace.every((e) => e.kind === 'state'));
    });

    test('a closed session stays closed and readable', async () => {
      const s = sample();
      await a.create(s);
      assert.equal(await a.close(s.sessionId, 'deleted', nowSec()), true);
      const after = await b.update(s.sessionId, { status: 'connected', updatedAt: nowSec() + 5 });
      assert.equal(after?.status, 'closed');
      assert.equal(after?.closeReason, 'deleted');
      assert.equal(await b.close(s.sessionId, 'swept', nowSec()), false);
      assert.equal((await a.get(s.sessionId))?.closeReason, 'deleted');
    });

    test('closes exactly once when two nodes race twenty closes', async () => {
      const s = sample();
      await a.create(s);
      const heard = collect(a, s.sessionId, 2, 2000);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).close(s.sessionId, 'swept', nowSec())));
      assert.equal(results.filter(Boolean).length, 1);
      const updates = await heard;
      assert.equal(updates.filter((u) => u.status === 'closed').length, 1);
      assert.equal((await a.trace(s.sessionId)).filter((e) => e.what.endsWith('→closed')).length, 1);
    });

    test('closeMany from two nodes at once closes each session exactly once', async () => {
      const sessions = Array.from({ length: 450 }, () => sample({ lastSeenAt: 4000 }));
      await Promise.all(sessions.map((s) => a.create(s)));
      const ids = sessions.map((s) => s.sessionId);
      const unknown = randomUUID();
      const [byA, byB] = await Promise.all([
        a.closeMany([...ids, unknown], 'swept', nowSec(), { ifLastSeenBefore: 4001 }),
        b.closeMany([...ids].reverse(), 'swept', nowSec(), { ifLastSeenBefore: 4001 }),
      ]);
      assert.equal(byA.length + byB.length, ids.length);
      assert.equal(new Set([...byA, ...byB]).size, ids.length);
      assert.ok(!byA.includes(unknown));
      const got = await Promise.all(ids.slice(0, 20).map((id) => b.get(id)));
      assert.ok(got.every((s) => s?.status === 'closed' && s.closeReason === 'swept'));
      assert.deepEqual(await a.closeMany(ids.slice(0, 5), 'deleted', nowSec()), [], 'already closed');
      const fresh = sample({ lastSeenAt: 6000 });
      await a.create(fresh);
      assert.deepEqual(await b.closeMany([fresh.sessionId], 'swept', nowSec(), { ifLastSeenBefore: 6000 }), [], 'seen since: spared');
      assert.equal(await a.close(fresh.sessionId, 'deleted', nowSec()), true);
    });

    test('a patch can close; closing by patch is published once', async () => {
      const s = sample();
      const heard = collect(b, s.sessionId, 2);
      await a.create(s);
      const closed = await a.update(s.sessionId, { status: 'closed', closeReason: 'bye', updatedAt: nowSec() });
      assert.equal(closed?.status, 'closed');
      assert.equal(await a.close(s.sessionId, 'swept', nowSec()), false);
      assert.deepEqual((await heard).map((u) => [u.status, u.reason]), [['connecting', ''], ['closed', 'bye']]);
    });

    test('moves a session to another TURN node', async () => {
      const s = sample();
      await a.create(s);
      const moved = await b.update(s.sessionId, { turnNode: 'node-b', updatedAt: nowSec() });
      assert.equal(moved?.turnNode, 'node-b');
      assert.equal((await a.get(s.sessionId))?.turnNode, 'node-b');
    });

    test('the stale index lists open sessions last seen before a time, oldest first', async () => {
      // lastSeenAt values far below every other test's (which use now).
      const [x, y, z] = [sample({ lastSeenAt: 10 }), sample({ lastSeenAt: 20 }), sample({ lastSeenAt: 30 })] as [Session, Session, Session];
      await Promise.all([a.create(y), a.create(x), a.create(z)]);
      assert.deepEqual(await b.findStale(25, 10), [x.sessionId, y.sessionId]);
      assert.deepEqual(await b.findStale(25, 1), [x.sessionId]);
      await a.close(x.sessionId, 'deleted', nowSec());
      const t = nowSec();
      await a.update(y.sessionId, { updatedAt: t, lastSeenAt: t });
      assert.deepEqual(await b.findStale(25, 10), []);
      assert.deepEqual(await b.findStale(35, 10), [z.sessionId]);
      await a.close(z.sessionId, 'deleted', nowSec());
    });

    test('close with ifLastSeenBefore spares a session seen since', async () => {
      const fresh = sample({ lastSeenAt: 5000 });
      await a.create(fresh);
      assert.equal(await b.close(fresh.sessionId, 'swept', nowSec(), { ifLastSeenBefore: 5000 }), false);
      assert.notEqual(((await a.get(fresh.sessionId)) as Session).status, 'closed');
      assert.equal(await b.close(fresh.sessionId, 'swept', nowSec(), { ifLastSeenBefore: 5001 }), true);
      assert.equal((await a.get(fresh.sessionId))?.closeReason, 'swept');
    });

    test('counts open sessions across nodes', async () => {
      const before = await a.countOpen();
      const s1 = sample();
      const s2 = sample();
      await a.create(s1);
      await b.create(s2);
      assert.equal(await b.countOpen(), before + 2);
      await b.close(s1.sessionId, 'deleted', nowSec());
      assert.equal(await a.countOpen(), before + 1);
      await a.close(s2.sessionId, 'deleted', nowSec());
    });

    test('caps open sessions per app across nodes; close, patch-close and sweep free a slot', async () => {
      const appId = `app_cap_${randomUUID().slice(0, 8)}`;
      const cap = 3;
      const tries = Array.from({ length: 10 }, () => sample({ appId }));
      const results = await Promise.allSettled(tries.map((s, i) => (i % 2 ? a : b).create(s, { maxOpenPerApp: cap })));
      const ok = tries.filter((_, i) => results[i]?.status === 'fulfilled');
      assert.equal(ok.length, cap, 'two nodes racing for the last slots do not overshoot');
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof P2pdError && r.reason.code === 'TOO_MANY_SESSIONS' && r.reason.statusCode === 429, String(r.reason));
      }
      assert.equal(await a.countOpenForApp(appId), cap);
      assert.equal(await b.countOpenForApp(appId), cap);
      const other = sample({ appId: `${appId}_other` });
      await b.create(other, { maxOpenPerApp: cap });
      assert.equal(await a.countOpenForApp(other.appId), 1, 'another app has its own count');
      const [s1, s2, s3] = ok as [Session, Session, Session];
      // DELETE / bye.
      assert.equal(await b.close(s1.sessionId, 'deleted', nowSec()), true);
      assert.equal(await a.countOpenForApp(appId), cap - 1);
      const again = sample({ appId });
      await a.create(again, { maxOpenPerApp: cap });
      await assert.rejects(b.create(sample({ appId }), { maxOpenPerApp: cap }), (e: unknown) => e instanceof P2pdError && e.code === 'TOO_MANY_SESSIONS');
      // A patch that closes, and the sweeper's batch close.
      await a.update(s2.sessionId, { status: 'closed', closeReason: 'bye', updatedAt: nowSec() });
      assert.deepEqual(await b.closeMany([s3.sessionId, again.sessionId], 'swept', nowSec()), [s3.sessionId, again.sessionId]);
      assert.equal(await a.countOpenForApp(appId), 0);
      // A keepalive or status change keeps the session counted.
      const kept = sample({ appId });
      await a.create(kept, { maxOpenPerApp: 1 });
      await b.update(kept.sessionId, { status: 'connected', updatedAt: nowSec(), lastSeenAt: nowSec() });
      assert.equal(await b.countOpenForApp(appId), 1);
      await assert.rejects(b.create(sample({ appId }), { maxOpenPerApp: 1 }), (e: unknown) => e instanceof P2pdError && e.code === 'TOO_MANY_SESSIONS');
      // A refused duplicate id takes no slot and frees none.
      await assert.rejects(a.create({ ...kept }, { maxOpenPerApp: 5 }), (e: unknown) => e instanceof P2pdError && e.code === 'SESSION_EXISTS');
      assert.equal(await a.countOpenForApp(appId), 1);
      await a.close(kept.sessionId, 'deleted', nowSec());
      await a.close(other.sessionId, 'deleted', nowSec());
      assert.equal(await b.countOpenForApp(appId), 0);
    });

    test('caps open sessions per device (--max-viewers) across nodes, beside the app cap; a closed one frees its slot', async () => {
      const deviceId = `cam_cap_${randomUUID().slice(0, 8)}`;
      const cap = 2;
      const isBusy = (e: unknown): boolean => e instanceof P2pdError && e.code === 'DEVICE_BUSY' && e.statusCode === 409;
      // Viewers from different apps race for the device's last slots on two nodes.
      const tries = Array.from({ length: 8 }, (_, i) => sample({ deviceId, appId: `app_v${i}_${randomUUID().slice(0, 4)}` }));
      const results = await Promise.allSettled(tries.map((t, i) => (i % 2 ? a : b).create(t, { maxOpenPerDevice: cap, maxOpenPerApp: 5 })));
      const ok = tries.filter((_, i) => results[i]?.status === 'fulfilled');
      assert.equal(ok.length, cap, 'two nodes racing for the last viewer slots do not overshoot');
      for (const r of results) if (r.status === 'rejected') assert.ok(isBusy(r.reason), String(r.reason));
      assert.equal(await a.countOpenForDevice(deviceId), cap);
      // A refusal by the device cap takes no slot of its app.
      for (const t of tries.filter((x) => !ok.includes(x))) assert.equal(await b.countOpenForApp(t.appId), 0, 'the refused viewer\'s app holds nothing');
      // Another device has its own count; the app cap still applies first.
      const other = sample({ deviceId: `${deviceId}_other`, appId: ok[0]!.appId });
      await b.create(other, { maxOpenPerDevice: cap });
      assert.equal(await a.countOpenForDevice(other.deviceId), 1);
      await assert.rejects(a.create(sample({ deviceId: `${deviceId}_third`, appId: ok[0]!.appId }), { maxOpenPerApp: 2, maxOpenPerDevice: cap }),
        (e: unknown) => e instanceof P2pdError && e.code === 'TOO_MANY_SESSIONS');
      const [v1, v2] = ok as [Session, Session];
      // A viewer leaves (DELETE / bye): the next one gets in.
      assert.equal(await b.close(v1.sessionId, 'deleted', nowSec()), true);
      assert.equal(await a.countOpenForDevice(deviceId), cap - 1);
      const next = sample({ deviceId });
      await a.create(next, { maxOpenPerDevice: cap });
      await assert.rejects(b.create(sample({ deviceId }), { maxOpenPerDevice: cap }), isBusy);
      // A keepalive keeps a viewer counted; a patch that closes and the sweeper free its slot.
      await b.update(v2.sessionId, { status: 'connected', updatedAt: nowSec(), lastSeenAt: nowSec() });
      assert.equal(await a.countOpenForDevice(deviceId), cap);
      await a.update(v2.sessionId, { status: 'closed', closeReason: 'bye', updatedAt: nowSec() });
      assert.deepEqual(await b.closeMany([next.sessionId], 'swept', nowSec()), [next.sessionId]);
      assert.equal(await a.countOpenForDevice(deviceId), 0);
      // No cap: as many as asked.
      const free = Array.from({ length: 3 }, () => sample({ deviceId }));
      for (const f of free) await a.create(f);
      assert.equal(await b.countOpenForDevice(deviceId), 3);
      await b.closeMany([...free.map((f) => f.sessionId), other.sessionId], 'deleted', nowSec());
      assert.equal(await a.countOpenForDevice(deviceId), 0);
    });

    test('a session whose record expires leaves its app\'s count', async () => {
      const appId = `app_ttl_${randomUUID().slice(0, 8)}`;
      const s = sample({ appId, ttl: 1 });
      await a.create(s, { maxOpenPerApp: 1 });
      assert.equal(await b.countOpenForApp(appId), 1);
      await assert.rejects(b.create(sample({ appId }), { maxOpenPerApp: 1 }), (e: unknown) => e instanceof P2pdError && e.code === 'TOO_MANY_SESSIONS');
      await sleep(1300);
      assert.equal(await b.countOpenForApp(appId), 0);
      const next = sample({ appId });
      await b.create(next, { maxOpenPerApp: 1 });
      assert.equal(await a.countOpenForApp(appId), 1);
      await a.close(next.sessionId, 'deleted', nowSec());
    });

    test('trace keeps appended events in order and only the newest TRACE_MAX_EVENTS', async () => {
      const s = sample();
      await a.create(s);
      await a.appendTrace(s.sessionId, { at: 1, kind: 'signal', what: 'offer', detail: { from: 'app_1' } });
      await b.appendTrace(s.sessionId, { at: 2, kind: 'turn', what: 'allocate' });
      const t = await a.trace(s.sessionId);
      assert.deepEqual(t.slice(1), [
        { at: 1, kind: 'signal', what: 'offer', detail: { from: 'app_1' } },
        { at: 2, kind: 'turn', what: 'allocate' },
      ]);
      await Promise.all(Array.from({ length: TRACE_MAX_EVENTS + 10 }, (_, i) => a.appendTrace(s.sessionId, { at: 100 + i, kind: 'signal', what: 'candidate' })));
      const full = await b.trace(s.sessionId);
      assert.equal(full.length, TRACE_MAX_EVENTS);
      assert.equal(full.at(-1)?.at, 100 + TRACE_MAX_EVENTS + 9);
    });

    test('touch appends to the trace and refreshes updatedAt, lastSeenAt and the stale index, without an update', async () => {
      const now = nowSec();
      const s = sample({ appId: `app_${randomUUID()}`, createdAt: now - 1000, updatedAt: now - 1000, lastSeenAt: now - 1000 });
      // The creation is published too, and across a cluster it may reach b late: wait for it, so
      // what b hears afterwards can only come from touch.
      const created = collect(b, s.sessionId, 1);
      await a.create(s);
      assert.equal((await created).length, 1);
      assert.ok((await b.findStale(now - 500, 1000)).includes(s.sessionId));
      const heard = collect(b, s.sessionId, 1, 500);
      await a.touch(s.sessionId, { at: 5, kind: 'signal', what: 'offer', detail: { from: s.appId } }, now);
      const got = await a.get(s.sessionId);
      assert.equal(got?.updatedAt, now);
      assert.equal(got?.lastSeenAt, now);
      assert.equal(got?.status, s.status);
      assert.deepEqual((await b.trace(s.sessionId)).at(-1), { at: 5, kind: 'signal', what: 'offer', detail: { from: s.appId } });
      assert.deepEqual(await heard, []);
      assert.equal((await b.findStale(now - 500, 1000)).includes(s.sessionId), false);
      assert.equal(await b.countOpenForApp(s.appId), 1);
      await a.close(s.sessionId, 'deleted', now);
    });

    test('touch on a closed session only appends to its trace; on an unknown one it does nothing', async () => {
      const s = sample();
      await a.create(s);
      await a.close(s.sessionId, 'bye', s.createdAt);
      await b.touch(s.sessionId, { at: 7, kind: 'signal', what: 'candidate' }, s.createdAt + 50);
      const got = await a.get(s.sessionId);
      assert.equal(got?.status, 'closed');
      assert.equal(got?.updatedAt, s.createdAt);
      assert.deepEqual((await a.trace(s.sessionId)).at(-1), { at: 7, kind: 'signal', what: 'candidate' });
      const unknown = randomUUID();
      await b.touch(unknown, { at: 1, kind: 'signal', what: 'offer' }, s.createdAt);
      assert.equal(await a.get(unknown), undefined);
      assert.deepEqual(await a.trace(unknown), []);
    });

    test('a record and its trace expire after the ttl', async () => {
      const s = sample({ ttl: 1 });
      await a.create(s);
      await a.appendTrace(s.sessionId, { at: 1, kind: 'api', what: 'x' });
      assert.ok(await b.get(s.sessionId));
      await sleep(1300);
      assert.equal(await b.get(s.sessionId), undefined);
      assert.deepEqual(await b.trace(s.sessionId), []);
    });
  });
}
