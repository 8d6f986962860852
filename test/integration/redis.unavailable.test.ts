/** What ioredis rejects with when Redis is slow or gone, as `p2pd serve` tells it from a bug (src/redis.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeRedisClient, createRedisClient, isRedisUnavailable, waitReady } from '../../src/redis.ts';
import { REDIS_MISSING, haveRedis, startRedis } from '../helpers/redis.ts';

test('a command timed out on a busy Redis, or sent to a stopped one, is "redis unavailable"; other errors are not', { skip: haveRedis() ? false : REDIS_MISSING }, async () => {
  const redis = await startRedis();
  const slow = createRedisClient({ urls: [redis.url], name: 'unavailable-test', commandTimeoutMs: 100 });
  const admin = createRedisClient({ urls: [redis.url], name: 'unavailable-admin', commandTimeoutMs: 5000 });
  try {
    assert.ok(await waitReady(slow, 5000) && await waitReady(admin, 5000));
    // Half a second in which Redis answers nobody.
    const busy = admin.eval(`local s = redis.call('TIME')
local t0 = s[1] * 1000000 + s[2]
repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - t0 > 500000
return 1`, 0);
    const timedOut = await slow.get('k').then(() => undefined, (err: unknown) => err);
    await busy;
    assert.ok(isRedisUnavailable(timedOut), `not recognised: ${String(timedOut)}`);
    await redis.stop();
    const gone = await slow.get('k').then(() => undefined, (err: unknown) => err);
    assert.ok(isRedisUnavailable(gone), `not recognised: ${String(gone)}`);
    assert.equal(isRedisUnavailable(new TypeError('x is undefined')), false);
    assert.equal(isRedisUnavailable('Command timed out'), false);
  } finally {
    await Promise.allSettled([closeRedisClient(slow), closeRedisClient(admin)]);
    await redis.stop().catch(() => undefined);
  }
});
