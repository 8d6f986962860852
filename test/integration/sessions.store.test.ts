import { RedisSessionStore } from '../../src/session/redisStore.ts';
import { sessionStoreSuite } from '../../src/session/store.suite.ts';
import { startRedis } from '../helpers/redis.ts';

// The suite checks what the store does, not how fast: the 500 ms default (503 within a second)
// is sessions.outage.test.ts's to test; on a loaded machine it would turn these into timing tests.
const SUITE_COMMAND_TIMEOUT_MS = 5000;

sessionStoreSuite('a real redis-server', async () => {
  const redis = await startRedis();
  return {
    async open() {
      const store = new RedisSessionStore({ urls: [redis.url], commandTimeoutMs: SUITE_COMMAND_TIMEOUT_MS });
      if (!(await store.ready(5000))) throw new Error('redis store not ready');
      return store;
    },
    close: () => redis.stop(),
  };
});
