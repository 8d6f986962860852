/**
 * What the broker fabric keeps in Redis for a client that never comes back is bounded
 * (src/broker/fabric.ts, src/broker/clientIds.ts): a persistent session's queue holds at most
 * `maxQueued` packets, and once the session has been away `sessionExpirySec` its subscriptions,
 * queue and client-id lease are gone, so its id is free for anyone. Real Redis, the production
 * broker and service in this process, with short bounds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createVerifier } from '../../src/auth/token.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/broker/embedded.ts';
import { createBrokerFabric, type BrokerFabric } from '../../src/broker/fabric.ts';
import { LEASE_PREFIX, SESSIONS_KEY } from '../../src/broker/clientIds.ts';
import { MemorySessionStore } from '../../src/session/memoryStore.ts';
import { SignalingService } from '../../src/signaling/service.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { JWT_SECRET, connectPeer, silentLog, waitUntil, type Peer } from '../helpers/signaling.ts';

describe('bounds of the broker fabric', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let fabric: BrokerFabric;
  let broker: EmbeddedBroker;
  let service: SignalingService;
  let db: Redis;
  let url: string;
  const peers: Peer[] = [];

  before(async () => {
    redis = await startRedis();
    db = new Redis(redis.port, '127.0.0.1');
    const verifier = await createVerifier({ secret: JWT_SECRET });
    const store = new MemorySessionStore();
    service = new SignalingService({ store, verifier, log: silentLog, createSession: () => Promise.reject(new Error('no sessions here')) });
    fabric = await createBrokerFabric({ urls: [redis.url], log: silentLog, sessionExpirySec: 1, maxQueued: 3, leaseRefreshMs: 200 });
    broker = await startEmbeddedBroker({ verifier, gate: service, log: silentLog, tcp: { host: '127.0.0.1', port: 0 }, fabric });
    service.setPublisher(broker);
    url = `mqtt://127.0.0.1:${broker.tcpPort}`;
  });
  after(async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    await broker?.close();
    await fabric?.close();
    await service?.stop();
    db?.disconnect();
    await redis?.stop();
  });

  test('a persistent session away: its queue is capped, then everything it held expires and its id is free', async () => {
    const device = await connectPeer(url, 'device_b1', 'device', { clientId: 'device_b1-cam', clean: false, presence: false });
    await device.client.endAsync();
    assert.equal(await db.get(`${LEASE_PREFIX}device_b1-cam`) !== null, true, 'the away session keeps its id');
    const other = await connectPeer(url, 'device_b2', 'device', { presence: false, subscribe: false });
    peers.push(other);
    // While away, its id stays its own.
    await assert.rejects(connectPeer(url, 'device_b2', 'device', { clientId: 'device_b1-cam', presence: false, subscribe: false }), /Identifier rejected|identifier/i);
    for (let i = 0; i < 10; i++) await broker.publish('p2p/signal/device/device_b1', JSON.stringify({ type: 'bye', n: i }), { qos: 1 });
    const queued = await db.llen('outgoing:device_b1-cam');
    assert.ok(queued <= 3, `at most 3 queued (${queued})`);
    assert.ok(await db.ttl('outgoing:device_b1-cam') > 0, 'the queue expires');

    // After the expiry one node forgets the session: subscriptions, queue, lease.
    await waitUntil(async () => (await db.sismember('clients', 'device_b1-cam')) === 0, 'the session forgotten', 10_000);
    assert.equal(await db.exists('client:device_b1-cam', 'outgoing:device_b1-cam', `${LEASE_PREFIX}device_b1-cam`), 0);
    assert.equal(await db.zscore(SESSIONS_KEY, 'device_b1-cam'), null);
    // Queued packets expire with it.
    await waitUntil(async () => (await db.keys('packet:*')).length === 0, 'queued packets gone', 10_000);
    // The id is free for anyone now.
    const taker = await connectPeer(url, 'device_b2', 'device', { clientId: 'device_b1-cam', presence: false, subscribe: false });
    peers.push(taker);
  });

  test('a failed Redis read of retained messages under a SUBSCRIBE is logged, and the node goes on', async () => {
    const app = await connectPeer(url, 'app_b4', 'app', { subscribe: false });
    peers.push(app);
    const errors: string[] = [];
    const onUncaught = (err: Error): void => { errors.push(err.message); };
    process.on('uncaughtException', onUncaught);
    // The retained hash is briefly something else: the read behind this SUBSCRIBE fails (WRONGTYPE),
    // as one that times out on a loaded Redis does.
    const saved = await db.dump('retained');
    await db.del('retained');
    await db.set('retained', 'not a hash');
    try {
      await app.client.subscribeAsync('p2p/signal/app/app_b4', { qos: 1 });
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      process.off('uncaughtException', onUncaught);
      await db.del('retained');
      if (saved !== null) await db.restore('retained', 0, saved);
    }
    assert.deepEqual(errors, [], 'nothing escaped the broker');
    // The node still serves: a new client logs in, subscribes (its retained read works again) and
    // gets what the service sends it.
    const watcher = await connectPeer(url, 'app_b5', 'app', { subscribe: false });
    peers.push(watcher);
    const seen = new Promise<string>((resolve) => watcher.client.on('message', (_topic, payload) => resolve(payload.toString())));
    await watcher.client.subscribeAsync('p2p/signal/app/app_b5', { qos: 1 });
    await broker.publish('p2p/signal/app/app_b5', JSON.stringify({ type: 'bye', n: 1 }), { qos: 1 });
    assert.match(await seen, /"bye"/);
  });

  test('a clean connection holds its id only while connected, on every node', async () => {
    const app = await connectPeer(url, 'app_b3', 'app', { clientId: 'app_b3-tab' });
    assert.notEqual(await db.get(`${LEASE_PREFIX}app_b3-tab`), null);
    await app.close();
    await waitUntil(async () => (await db.get(`${LEASE_PREFIX}app_b3-tab`)) === null, 'the lease released', 5000);
    assert.equal(await db.zscore(SESSIONS_KEY, 'app_b3-tab'), null, 'a clean session is never listed for expiry');
  });
});
