import { RedisSessionStore } from '../../src/session/redisStore.ts';
import { sessionStoreSuite } from '../../src/session/store.suite.ts';
import { startRedis } from '../helpers/redis.ts';

sessionStoreSuite('a real redis-server', async () => {
  const redis = await startRedis();
  return {
    async open() {
      const store = new RedisSessionStore({ urls: [redis.url] });
      if (!(await store.ready(5000))) throw new Error('redis store not ready');
      return store;
    },
    close: () => redis.stop(),
  };
});
