/**
 * The broker fabric (docs/signaling.md "One broker across nodes"): two `p2pd serve` processes on
 * one real Redis, an app on node A and a device on node B. They signal as on one node: presence,
 * session notices, QoS 1 both ways (each message once), wills, and every rule of the embedded
 * broker (topic rights, `from`, client ids) at whichever node a client is on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { connect } from 'mqtt';
import { closeRedisClient, createRedisClient } from '../../src/redis.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { REDIS_MISSING, haveRedis, startRedis, startRedisCluster, type RedisServer } from '../helpers/redis.ts';
import { JWT_SECRET, SDP_ANSWER, SDP_OFFER, connectPeer, granted, requestSession, sleep, token, waitUntil, type Peer } from '../helpers/signaling.ts';

interface Node {
  readonly p2pd: P2pdProcess;
  readonly mqttUrl: string;
}

async function startNode(redisUrl: string): Promise<Node> {
  const mqttPort = await freePort();
  const p2pd = await startP2pd({ args: ['--mqtt', `127.0.0.1:${mqttPort}`, '--jwt-secret', JWT_SECRET, '--roles', 'stun,turn,signal,api', '--auth-secret', 'fabric-test-turn-secret', '--redis-url', redisUrl] });
  return { p2pd, mqttUrl: `mqtt://127.0.0.1:${mqttPort}` };
}

const createSession = (node: Node, tok: string, deviceId: string): Promise<Response> => fetch(`${node.p2pd.httpUrl}/v1/sessions`, {
  method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId }),
});

/** Connects with MQTT.js and resolves with the CONNACK return code (0 = accepted). */
function connackCode(url: string, username: string, password: string, clientId: string): Promise<number> {
  return new Promise((resolve) => {
    const c = connect(url, { username, password, clientId, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4 });
    c.once('connect', () => { c.end(true); resolve(0); });
    c.once('error', (err) => { c.end(true); resolve((err as { code?: number }).code ?? -1); });
  });
}

/**
 * A persistent device connecting again. Coming back takes the client id over (src/broker/clientIds.ts)
 * and restores the session from Redis: on a loaded machine a CONNACK can miss the client's 5 s,
 * and a client connects again, as the SDK does (a bounded retry, at most 3 tries).
 */
async function comeBack(url: string, deviceId: string, clientId: string): Promise<Peer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectPeer(url, deviceId, 'device', { clientId, clean: false, subscribe: false, presence: false });
    } catch (err) {
      if (attempt >= 3 || !/connack timeout/.test(String(err))) throw err;
    }
  }
}

function fabricSuite(name: string, start: () => Promise<{ url: string; stop(): Promise<void> }>): void {
  describe(name, { skip: haveRedis() ? false : REDIS_MISSING, timeout: 120_000 }, () => {
    let redis: { url: string; stop(): Promise<void> };
    let a: Node;
    let b: Node;
    const peers: Peer[] = [];

    before(async () => {
      redis = await start();
      [a, b] = await Promise.all([startNode(redis.url), startNode(redis.url)]);
    });
    after(async () => {
      await Promise.allSettled(peers.map((p) => p.close()));
      await Promise.allSettled([a?.p2pd.stop(), b?.p2pd.stop()]);
      await redis?.stop();
    });

    test('an app on node A and a device on node B: presence, notice, offer and answer, each once', async () => {
      const appTok = await token('app_f1', 'app', ['device_f1']);
      const device = await connectPeer(b.mqttUrl, 'device_f1', 'device', { clientId: 'device_f1-cam', clean: false });
      const app = await connectPeer(a.mqttUrl, 'app_f1', 'app', { token: appTok });
      peers.push(device, app);
      // Node A learns of the device's `online` through the fabric.
      let created = await createSession(a, appTok, 'device_f1');
      for (let i = 0; created.status === 409 && i < 50; i++) {
        await sleep(100);
        created = await createSession(a, appTok, 'device_f1');
      }
      assert.equal(created.status, 201, await created.clone().text());
      const { sessionId } = (await created.json()) as { sessionId: string };
      // The notice node A sends reaches the device on node B.
      await device.inbox.next((m) => m.body.type === 'session' && m.body.sessionId === sessionId, 5000, 'the session notice');

      const offerId = await app.send('device_f1', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
      await device.inbox.next((m) => m.body.msgId === offerId, 5000, 'the offer');
      const answerId = await device.send('app_f1', { type: 'answer', sessionId, payload: { sdp: SDP_ANSWER } });
      await app.inbox.next((m) => m.body.msgId === answerId, 5000, 'the answer');
      // A session asked for over MQTT on node A also opens for the device on node B.
      const viaMqtt = await requestSession(app, 'device_f1');
      await device.inbox.next((m) => m.body.type === 'session' && m.body.sessionId === viaMqtt.sessionId, 5000, 'the second notice');
      // Anything delivered twice (local and Redis bus both) would be here by now: a round trip later.
      const marker = await app.send('device_f1', { type: 'keepalive', sessionId, payload: { state: 'checking' } });
      await device.inbox.next((m) => m.body.msgId === marker, 5000, 'the keepalive');
      assert.equal(device.inbox.messages.filter((m) => m.body.msgId === offerId).length, 1, 'the offer arrived once');
      assert.equal(app.inbox.messages.filter((m) => m.body.msgId === answerId).length, 1, 'the answer arrived once');

      // The offer was tracked once, at the node it came in by; the answer at the other.
      const trace = await fetch(`${a.p2pd.httpUrl}/v1/sessions/${sessionId}/trace`, { headers: { authorization: `Bearer ${appTok}` } });
      const events = ((await trace.json()) as { events: Array<{ kind: string; what: string }> }).events;
      assert.deepEqual(events.filter((e) => e.kind === 'signal').map((e) => e.what), ['offer', 'answer', 'keepalive']);
    });

    test("a device killed on node B: its will reaches the app on node A, and node A calls it offline", async () => {
      const appTok = await token('app_f2', 'app', ['device_f2']);
      const app = await connectPeer(a.mqttUrl, 'app_f2', 'app', { token: appTok });
      peers.push(app);
      assert.equal(await granted(app.client, 'p2p/presence/device/device_f2'), 1);
      const device = await connectPeer(b.mqttUrl, 'device_f2', 'device');
      await app.inbox.next((m) => m.topic === 'p2p/presence/device/device_f2' && m.raw === 'online', 5000, 'online');
      // A crash: the connection drops without DISCONNECT, so the broker publishes the will.
      device.client.stream.destroy();
      await app.inbox.next((m) => m.topic === 'p2p/presence/device/device_f2' && m.raw === 'offline', 5000, 'the will');
      device.client.end(true);
      await waitUntil(async () => (await createSession(a, appTok, 'device_f2')).status === 409, 'node A calls the device offline', 5000);
      // A later subscriber on node A gets the retained `offline`.
      const late = await connectPeer(a.mqttUrl, 'app_f2', 'app', { token: appTok, subscribe: false });
      peers.push(late);
      await late.client.subscribeAsync('p2p/presence/device/device_f2', { qos: 1 });
      await late.inbox.next((m) => m.raw === 'offline', 5000, 'the retained offline');
    });

    test('a device that moves from node B to node A stays online', async () => {
      const appTok = await token('app_f3', 'app', ['device_f3']);
      const first = await connectPeer(b.mqttUrl, 'device_f3', 'device', { clientId: 'device_f3-cam' });
      await waitUntil(async () => (await createSession(a, appTok, 'device_f3')).status === 201, 'online on node A', 5000);
      // A clean disconnect on B (no will) and a reconnect on A within the grace.
      await first.client.endAsync();
      const second = await connectPeer(a.mqttUrl, 'device_f3', 'device', { clientId: 'device_f3-cam' });
      peers.push(second);
      await sleep(2000); // past node B's one-second offline grace
      assert.equal((await createSession(a, appTok, 'device_f3')).status, 201, 'node A still has the device online');
      assert.equal((await createSession(b, appTok, 'device_f3')).status, 201, 'node B too');
    });

    test('the rules hold at node B: topic rights, from, and client ids held on node A', async () => {
      const device = await connectPeer(a.mqttUrl, 'device_f4', 'device', { clientId: 'device_f4-cam', clean: false });
      peers.push(device);
      const appTok = await token('app_f4', 'app', ['device_f4']);
      const stranger = await connectPeer(b.mqttUrl, 'app_x4', 'app', { devices: ['device_other'] });
      peers.push(stranger);
      // Through node B nobody subscribes to the device's topic or presence without the right.
      assert.equal(await granted(stranger.client, 'p2p/signal/device/device_f4'), 128);
      assert.equal(await granted(stranger.client, 'p2p/presence/device/device_f4'), 128);
      assert.equal(await granted(stranger.client, 'p2p/signal/device/+'), 128);
      assert.equal(await granted(stranger.client, '#'), 128);
      // A message that claims another sender is refused at node B before it enters the fabric.
      const app = await connectPeer(b.mqttUrl, 'app_f4', 'app', { token: appTok });
      peers.push(app);
      // The device's `online` reaches node B through Redis a moment after its PUBACK on node A.
      let created = await createSession(b, appTok, 'device_f4');
      for (let i = 0; i < 100 && created.status === 409; i++) {
        await sleep(50);
        created = await createSession(b, appTok, 'device_f4');
      }
      assert.equal(created.status, 201);
      const { sessionId } = (await created.json()) as { sessionId: string };
      const forged = await app.send('device_f4', { type: 'offer', sessionId, from: 'app_other', payload: { sdp: SDP_OFFER } });
      await app.inbox.error('FORGED_FROM', 5000);
      const fine = await app.send('device_f4', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
      await device.inbox.next((m) => m.body.msgId === fine, 5000, 'the real offer');
      assert.equal(device.inbox.messages.some((m) => m.body.msgId === forged), false, 'the forged offer never reached node A');
      // The device's client id (a persistent session on node A) is refused to another user on node B…
      assert.equal(await connackCode(b.mqttUrl, 'app_x4', stranger.token, 'device_f4-cam'), 2);
      // …and the holder was not disturbed.
      const still = await app.send('device_f4', { type: 'keepalive', sessionId, payload: { state: 'checking' } });
      await device.inbox.next((m) => m.body.msgId === still, 5000, 'a message after the refused takeover');
      assert.equal(device.client.connected, true);
    });

    test('QoS 1 queued on node A for a persistent device away, delivered when it comes back on node B', async () => {
      const appTok = await token('app_f5', 'app', ['device_f5']);
      const device = await connectPeer(a.mqttUrl, 'device_f5', 'device', { clientId: 'device_f5-cam', clean: false });
      const app = await connectPeer(a.mqttUrl, 'app_f5', 'app', { token: appTok });
      peers.push(app);
      const created = await createSession(a, appTok, 'device_f5');
      assert.equal(created.status, 201);
      const { sessionId } = (await created.json()) as { sessionId: string };
      // Away without a will being sent yet (a dropped connection), then a bye while away.
      await device.client.endAsync(true);
      const bye = await app.send('device_f5', { type: 'bye', sessionId, payload: { reason: 'test' } });
      const back = await comeBack(b.mqttUrl, 'device_f5', 'device_f5-cam');
      peers.push(back);
      await back.inbox.next((m) => m.body.msgId === bye, 5000, 'the queued bye');
    });

    test('a QoS 1 message a persistent device acknowledged leaves Redis: not queued, not sent again when it comes back', async () => {
      const db = createRedisClient({ urls: redis.url.split(','), name: 'fabric-test', commandTimeoutMs: 5000 });
      try {
        const appTok = await token('app_f6', 'app', ['device_f6']);
        const device = await connectPeer(b.mqttUrl, 'device_f6', 'device', { clientId: 'device_f6-cam', clean: false });
        const app = await connectPeer(a.mqttUrl, 'app_f6', 'app', { token: appTok });
        peers.push(app);
        const created = await createSession(a, appTok, 'device_f6');
        assert.equal(created.status, 201);
        const { sessionId } = (await created.json()) as { sessionId: string };
        const offer = await app.send('device_f6', { type: 'offer', sessionId, payload: { type: 'offer', sdp: SDP_OFFER } });
        await device.inbox.next((m) => m.body.msgId === offer, 5000, 'the offer');
        // The device's PUBACK takes the packet's name off its queue (aedes-persistence-redis, patched).
        await waitUntil(async () => (await db.llen('outgoing:device_f6-cam')) === 0, 'the queue emptied by the PUBACK', 10_000);
        await device.client.endAsync(true);
        const back = await comeBack(a.mqttUrl, 'device_f6', 'device_f6-cam');
        peers.push(back);
        const marker = await app.send('device_f6', { type: 'keepalive', sessionId, payload: { state: 'checking' } });
        await back.inbox.next((m) => m.body.msgId === marker, 10_000, 'a message after coming back');
        assert.equal(back.inbox.messages.some((m) => m.body.msgId === offer), false, 'the acknowledged offer came again');
        // Whatever stays queued for others expires: no packet or count without a TTL.
        const masters = db instanceof Cluster ? db.nodes('master') : [db];
        for (const node of masters) {
          // -1: no TTL (-2: deleted since KEYS listed it).
          for (const key of await node.keys('packet:*')) assert.notEqual(await node.ttl(key), -1, `${key} has no TTL`);
        }
      } finally {
        await closeRedisClient(db);
      }
    });
  });
}

fabricSuite('the broker fabric on one Redis', async () => {
  const r: RedisServer = await startRedis();
  return { url: r.url, stop: () => r.stop() };
});

fabricSuite('the broker fabric on Redis Cluster', async () => {
  const c = await startRedisCluster();
  return { url: c.urls.join(','), stop: () => c.stop() };
});
