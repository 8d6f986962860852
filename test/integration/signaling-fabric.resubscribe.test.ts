/**
 * A persistent session that logs in again and resubscribes what it had is not stored again
 * (src/broker/fabric.ts, src/broker/restoredSubscriptions.ts), and loses nothing for it: its
 * queued QoS 1 messages and the retained presence of its SUBSCRIBE still arrive; a changed
 * subscription (another QoS, a new topic) and one removed by another node in between are written.
 * Real Redis, two brokers of the production fabric in this process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { IPublishPacket } from 'mqtt';
import { createVerifier } from '../../src/auth/token.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/broker/embedded.ts';
import { createBrokerFabric, type BrokerFabric } from '../../src/broker/fabric.ts';
import { MemorySessionStore } from '../../src/session/memoryStore.ts';
import { SignalingService } from '../../src/signaling/service.ts';
import { appTopic, presenceTopic } from '../../src/signaling/topics.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { JWT_SECRET, connectPeer, silentLog, token, type Peer } from '../helpers/signaling.ts';

/** The store's own encoder: a client's subscriptions are msgpack values of `client:<id>`. */
const fromStore = createRequire(createRequire(import.meta.url).resolve('aedes-persistence-redis'));
const msgpack = fromStore('msgpack-lite') as { decode(buf: Buffer): { topic: string; qos: number } };

interface Node {
  readonly fabric: BrokerFabric;
  readonly broker: EmbeddedBroker;
  readonly service: SignalingService;
  readonly url: string;
}

async function startNode(redisUrl: string): Promise<Node> {
  const verifier = await createVerifier({ secret: JWT_SECRET });
  const service = new SignalingService({ store: new MemorySessionStore(), verifier, log: silentLog, createSession: () => Promise.reject(new Error('no sessions here')) });
  const fabric = await createBrokerFabric({ urls: [redisUrl], log: silentLog });
  const broker = await startEmbeddedBroker({ verifier, gate: service, log: silentLog, tcp: { host: '127.0.0.1', port: 0 }, fabric });
  service.setPublisher(broker);
  return { fabric, broker, service, url: `mqtt://127.0.0.1:${broker.tcpPort}` };
}

describe('a persistent session resubscribing after a reconnection', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let db: Redis;
  let a: Node;
  let b: Node;
  const peers: Peer[] = [];

  before(async () => {
    redis = await startRedis();
    db = new Redis(redis.port, '127.0.0.1');
    [a, b] = await Promise.all([startNode(redis.url), startNode(redis.url)]);
  });
  after(async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    for (const n of [a, b]) {
      await n?.broker.close();
      await n?.fabric.close();
      await n?.service.stop();
    }
    db?.disconnect();
    await redis?.stop();
  });

  /** Calls of a command so far, from Redis' own count. */
  const calls = async (cmd: string): Promise<number> => Number(/calls=(\d+)/.exec((await db.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${cmd}:`)) ?? '')?.[1] ?? 0);
  /** What the store holds of a client's subscriptions: topic → QoS. */
  const stored = async (clientId: string): Promise<Record<string, number>> => Object.fromEntries(
    Object.entries(await db.hgetallBuffer(`client:${clientId}`)).map(([topic, v]) => [topic, msgpack.decode(v).qos]));
  /** An app with a persistent session, logged in (its stored subscriptions restored), not yet subscribed. */
  const login = async (node: Node, appId: string, tok: string): Promise<Peer> => {
    const app = await connectPeer(node.url, appId, 'app', { token: tok, clientId: `${appId}-c`, clean: false, subscribe: false });
    peers.push(app);
    return app;
  };

  test('the same topics again: not written, and the queued QoS 1 message and the retained presence still arrive', async () => {
    const device = await connectPeer(a.url, 'dev_s1', 'device', {});
    peers.push(device);
    const tok = await token('app_s1', 'app', ['dev_s1']);
    const topics = [appTopic('app_s1'), presenceTopic('dev_s1')];
    const first = await login(a, 'app_s1', tok);
    await first.client.subscribeAsync(topics, { qos: 1 });
    await first.inbox.next((m) => m.topic === presenceTopic('dev_s1') && m.raw === 'online', 5000, 'the retained presence at the first SUBSCRIBE');
    assert.deepEqual(await stored('app_s1-c'), { [topics[0] as string]: 1, [topics[1] as string]: 1 });
    await first.close();
    await a.broker.publish(appTopic('app_s1'), JSON.stringify({ type: 'queued-while-away' }), { qos: 1 });

    const writes = await Promise.all(['hmset', 'sadd'].map(calls));
    const again = await login(a, 'app_s1', tok);
    const retained: string[] = [];
    again.client.on('message', (topic, payload, packet: IPublishPacket) => { if (packet.retain) retained.push(`${topic} ${payload.toString()}`); });
    const granted = await again.client.subscribeAsync(topics, { qos: 1 });
    assert.deepEqual(granted.map((g) => g.qos), [1, 1]);
    await again.inbox.next((m) => m.body.type === 'queued-while-away', 5000, 'the message queued while away');
    await again.inbox.next((m) => m.topic === presenceTopic('dev_s1') && m.raw === 'online', 5000, 'the retained presence at the SUBSCRIBE again');
    assert.deepEqual(retained, [`${presenceTopic('dev_s1')} online`], 'retained as the SUBSCRIBE asks (MQTT 3.1.1 §3.3.1.3)');
    assert.deepEqual(await Promise.all(['hmset', 'sadd'].map(calls)), writes, 'nothing stored again');
    assert.deepEqual(await stored('app_s1-c'), { [topics[0] as string]: 1, [topics[1] as string]: 1 });

    // Still subscribed across the fabric at QoS 1: a message while away again is queued by the other node.
    await again.close();
    await b.broker.publish(appTopic('app_s1'), JSON.stringify({ type: 'queued-by-b' }), { qos: 1 });
    const third = await login(a, 'app_s1', tok);
    await third.inbox.next((m) => m.body.type === 'queued-by-b', 5000, 'the message node B queued');
  });

  test('another QoS or a new topic is written', async () => {
    const tok = await token('app_s2', 'app', ['dev_s2']);
    const own = appTopic('app_s2');
    const first = await login(a, 'app_s2', tok);
    await first.client.subscribeAsync(own, { qos: 1 });
    await first.close();

    const lower = await login(a, 'app_s2', tok);
    await lower.client.subscribeAsync(own, { qos: 0 });
    assert.deepEqual(await stored('app_s2-c'), { [own]: 0 }, 'the other QoS is stored');
    await lower.close();

    const more = await login(a, 'app_s2', tok);
    await more.client.subscribeAsync([own, presenceTopic('dev_s2')], { qos: 1 });
    assert.deepEqual(await stored('app_s2-c'), { [own]: 1, [presenceTopic('dev_s2')]: 1 }, 'the new topic and the QoS are stored');
    await more.close();

    // Back as before, after a SUBSCRIBE that changed something on the same connection.
    const back = await login(a, 'app_s2', tok);
    await back.client.subscribeAsync(own, { qos: 0 });
    await back.client.subscribeAsync(own, { qos: 1 });
    assert.deepEqual(await stored('app_s2-c'), { [own]: 1, [presenceTopic('dev_s2')]: 1 });
  });

  test('subscriptions removed on another node between the login and its SUBSCRIBE are written again', async () => {
    const tok = await token('app_s3', 'app', []);
    const own = appTopic('app_s3');
    const first = await login(a, 'app_s3', tok);
    await first.client.subscribeAsync(own, { qos: 1 });
    await first.close();

    const again = await login(a, 'app_s3', tok);
    // Node A hears of the removal (the store's broadcast) before its client subscribes.
    const heard = new Promise<void>((resolve) => {
      (a.fabric.mq as { on(topic: string, fn: (packet: unknown, done: () => void) => void): void }).on('$SYS/sub/rm', (_packet, done) => {
        done();
        resolve();
      });
    });
    // Node B deletes the session's subscriptions as its sweep does for an expired session (a clean
    // login with the id there does too, but takes the connection on node A over as well).
    await b.fabric.persistence.cleanSubscriptions({ id: 'app_s3-c' });
    await heard;
    assert.deepEqual(await stored('app_s3-c'), {}, 'node B removed them');
    await again.client.subscribeAsync(own, { qos: 1 });
    assert.deepEqual(await stored('app_s3-c'), { [own]: 1 }, 'written again, as asked');
  });
});
