import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import { RedisSessionStore } from '../../src/session/redisStore.ts';
import { indexRefreshSuite } from '../../src/session/indexRefresh.suite.ts';
import { sessionStoreSuite } from '../../src/session/store.suite.ts';
import { startRedisCluster, type RedisCluster } from '../helpers/redis.ts';
import { startP2pd } from '../helpers/p2pd.ts';

// The suite checks what the store does, not how fast: the 500 ms default (503 within a second)
// is sessions.outage.test.ts's to test; on a loaded machine it would turn these into timing tests.
const SUITE_COMMAND_TIMEOUT_MS = 5000;

// One 3-master Cluster for the file: the store suite, the lazy index refresh, then a real p2pd on it.
let started: Promise<RedisCluster> | undefined;
const cluster = (): Promise<RedisCluster> => (started ??= startRedisCluster(3));
after(async () => { await (await started)?.stop(); });

sessionStoreSuite('a real 3-master Redis Cluster', async () => {
  const { urls } = await cluster();
  return {
    async open() {
      const store = new RedisSessionStore({ urls, commandTimeoutMs: SUITE_COMMAND_TIMEOUT_MS });
      if (!(await store.ready(10_000))) throw new Error('redis cluster store not ready');
      return store;
    },
    close: async () => undefined,
  };
});

indexRefreshSuite('a real 3-master Redis Cluster', async () => (await cluster()).urls);

describe('p2pd serve on a Redis Cluster', { timeout: 60_000 }, () => {
  test('--redis-url with several URLs: sessions and the node registry live in the Cluster', async () => {
    const { urls } = await cluster();
    const p2pd = await startP2pd({ args: ['--roles', 'stun,turn,api', '--redis-url', urls.join(','), '--jwt-secret', 'cluster-serve', '--node-id', 'on-cluster'] });
    try {
      assert.equal((await fetch(`${p2pd.httpUrl}/readyz`)).status, 200);
      const app = await createHs256Signer('cluster-serve').sign({ sub: 'app-1', role: 'app', devices: ['*'] });
      const headers = { authorization: `Bearer ${app}` };
      const created = await fetch(`${p2pd.httpUrl}/v1/sessions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"deviceId":"cam-1"}' });
      assert.equal(created.status, 201);
      const s = (await created.json()) as { sessionId: string; turnNode: string };
      assert.equal(s.turnNode, 'on-cluster');
      assert.equal((await fetch(`${p2pd.httpUrl}/v1/sessions/${s.sessionId}`, { headers })).status, 200);
      assert.equal((await fetch(`${p2pd.httpUrl}/v1/sessions/${s.sessionId}`, { method: 'DELETE', headers })).status, 204);
      const trace = (await (await fetch(`${p2pd.httpUrl}/v1/sessions/${s.sessionId}/trace`, { headers })).json()) as { events: { what: string }[] };
      assert.deepEqual(trace.events.map((e) => e.what), ['new→connecting', 'connecting→closed']);
    } finally {
      await p2pd.stop();
    }
  });
});
