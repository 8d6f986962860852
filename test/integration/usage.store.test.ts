import { RedisSessionStore } from '../../src/session/redisStore.ts';
import { RedisUsageStore } from '../../src/session/usageRedis.ts';
import { usageStoreSuite } from '../../src/session/usage.suite.ts';
import { startRedis } from '../helpers/redis.ts';

usageStoreSuite('a real redis-server', async () => {
  const redis = await startRedis();
  const sessions = new RedisSessionStore({ urls: [redis.url], commandTimeoutMs: 5000 });
  if (!(await sessions.ready(5000))) throw new Error('redis store not ready');
  return {
    open: async (retentionDays) => new RedisUsageStore({ client: sessions.client, retentionDays }),
    async close() {
      await sessions.shutdown();
      await redis.stop();
    },
  };
});
