import { after } from 'node:test';
import { RedisSessionStore } from '../../src/session/redisStore.ts';
import { indexRefreshSuite } from '../../src/session/indexRefresh.suite.ts';
import { sessionStoreSuite } from '../../src/session/store.suite.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The suite checks what the store does, not how fast: the 500 ms default (503 within a second)
// is sessions.outage.test.ts's to test; on a loaded machine it would turn these into timing tests.
const SUITE_COMMAND_TIMEOUT_MS = 5000;

// One redis-server for the file: the store suite, then the lazy index refresh on a fake clock.
let started: Promise<RedisServer> | undefined;
const redis = (): Promise<RedisServer> => (started ??= startRedis());
after(async () => { await (await started)?.stop(); });

sessionStoreSuite('a real redis-server', async () => {
  const { url } = await redis();
  return {
    async open() {
      const store = new RedisSessionStore({ urls: [url], commandTimeoutMs: SUITE_COMMAND_TIMEOUT_MS });
      if (!(await store.ready(5000))) throw new Error('redis store not ready');
      return store;
    },
    close: async () => undefined,
  };
});

indexRefreshSuite('a real redis-server', async () => [(await redis()).url]);
