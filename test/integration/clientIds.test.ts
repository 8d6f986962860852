/**
 * Client-id leases across nodes (src/broker/clientIds.ts): a node renews the leases of its live
 * connections in slices, so a node with many connections does not put them all in front of
 * every other Redis command at once, yet every lease outlives its TTL while it is held, and a
 * lease released mid-renewal keeps the expiry its release gave it. Real Redis.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ClientIdLeases, LEASE_PREFIX, SESSIONS_KEY, type Lease } from '../../src/broker/clientIds.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { silentLog, waitUntil } from '../helpers/signaling.ts';

const REFRESH_MS = 400;
const LIVE_TTL_MS = 3 * REFRESH_MS;
const HELD = 650; // four slices of 200

describe('client-id leases renewed in slices', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let db: Redis;

  before(async () => {
    redis = await startRedis();
    db = new Redis(redis.port, '127.0.0.1');
  });
  after(async () => {
    db?.disconnect();
    await redis?.stop();
  });

  test('every held lease outlives its TTL, a released one keeps its own expiry, and stopping lets them lapse', async () => {
    const leases = new ClientIdLeases({ db, log: silentLog, sessionExpirySec: 30, refreshMs: REFRESH_MS, forget: () => Promise.resolve() });
    const held: Lease[] = [];
    try {
      for (let i = 0; i < HELD; i++) {
        const lease = await leases.claim(`dev-${i}`, `user-${i}`, i % 2 === 0);
        assert.ok(lease, `dev-${i} claimed`);
        held.push(lease);
      }
      // A released clean lease is deleted, whatever the renewal in flight does.
      await held[1]!.release();
      const claimedAt = Date.now();
      // Past two lease lifetimes, with the timer's renewals only (bounded: they run every 400 ms).
      await waitUntil(() => Date.now() - claimedAt > 2 * LIVE_TTL_MS, 'two lease lifetimes', 10_000);
      const values = await db.mget(...held.map((_, i) => `${LEASE_PREFIX}dev-${i}`));
      const missing = values.flatMap((v, i) => (v === null && i !== 1 ? [i] : []));
      assert.deepEqual(missing, [], 'no held lease lapsed');
      assert.equal(values[1], null, 'the released clean lease stays deleted');
      // Persistent sessions are in the expiry index with a time still ahead.
      const score = Number(await db.zscore(SESSIONS_KEY, `dev-${HELD - 1 - ((HELD - 1) % 2)}`));
      assert.ok(score > Date.now(), `the index holds the last persistent session until ${score}`);
      // A released persistent lease lives the session expiry (30 s), not the live TTL.
      await held[2]!.release();
      await waitUntil(() => Date.now() - claimedAt > 4 * LIVE_TTL_MS, 'two more lease lifetimes', 10_000);
      const pttl = await db.pttl(`${LEASE_PREFIX}dev-2`);
      assert.ok(pttl > LIVE_TTL_MS, `the released persistent lease keeps the session expiry (${pttl} ms left)`);
    } finally {
      leases.stop();
    }
    await waitUntil(async () => (await db.exists(`${LEASE_PREFIX}dev-0`, `${LEASE_PREFIX}dev-${HELD - 1}`)) === 0,
      'leases lapse once their node stops', 10_000);
  });
});
