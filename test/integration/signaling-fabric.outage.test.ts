/**
 * The broker fabric while Redis stops answering for a moment (docs/signaling.md "One broker across
 * nodes"): a store write under a publish that times out is tried once more when Redis answers
 * again, so the connections stay up and the message is delivered, once. Redis is frozen (SIGSTOP)
 * by the test, so the timeout is a real one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { JWT_SECRET, SDP_ANSWER, SDP_OFFER, connectPeer, sleep, token, type Peer } from '../helpers/signaling.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { eventually } from '../helpers/wait.ts';

describe('the broker fabric while Redis stops answering', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 180_000 }, () => {
  let redis: RedisServer;
  let p2pd: P2pdProcess;
  let mqttUrl: string;
  const peers: Peer[] = [];

  before(async () => {
    redis = await startRedis();
    const mqttPort = await freePort();
    p2pd = await startP2pd({ args: ['--mqtt', `127.0.0.1:${mqttPort}`, '--jwt-secret', JWT_SECRET, '--roles', 'stun,turn,signal,api', '--auth-secret', 'fabric-outage-turn-secret', '--redis-url', redis.url] });
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  });
  after(async () => {
    redis?.resume();
    await Promise.allSettled(peers.map((p) => p.close()));
    await p2pd?.stop();
    await redis?.stop();
  });

  test('a QoS 1 offer whose queueing for a persistent device timed out: both stay connected, the offer arrives once Redis answers, and signaling goes on', async () => {
    const appTok = await token('app_o1', 'app', ['device_o1']);
    const device = await connectPeer(mqttUrl, 'device_o1', 'device', { clientId: 'device_o1-cam', clean: false });
    peers.push(device);
    const app = await connectPeer(mqttUrl, 'app_o1', 'app', { token: appTok });
    peers.push(app);
    let created: Response | undefined;
    for (let i = 0; i < 100 && created?.status !== 201; i++) {
      if (i > 0) await sleep(50);
      created = await fetch(`${p2pd.httpUrl}/v1/sessions`, {
        method: 'POST', headers: { authorization: `Bearer ${appTok}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: 'device_o1' }),
      });
    }
    assert.equal(created?.status, 201);
    const { sessionId } = (await created.json()) as { sessionId: string };
    device.client.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString()) as { type: string; msgId: string };
      if (m.type === 'offer') void device.send('app_o1', { type: 'answer', sessionId, replyTo: m.msgId, payload: { type: 'answer', sdp: SDP_ANSWER } });
    });
    const offer = async (msgId: string): Promise<void> => {
      await app.send('device_o1', { type: 'offer', sessionId, msgId, payload: { type: 'offer', sdp: SDP_OFFER } });
    };
    // One exchange before: the gate knows the session, nothing of it needs Redis while frozen.
    await offer('o1-before');
    await app.inbox.next((m) => m.body.replyTo === 'o1-before', 10_000, 'the answer before the outage');
    let closes = 0;
    for (const p of [app, device]) p.client.on('close', () => { closes++; });
    const errorsBefore = await metricValue(p2pd.httpUrl, 'mqtt_store_errors_total{operation="enqueue"}');

    redis.pause();
    let acked: Promise<void>;
    try {
      acked = offer('o1-during');
      // The offer's queueing for the device's persistent session waits out its 2 s timeout.
      await eventually('the queueing timed out', async () => await metricValue(p2pd.httpUrl, 'mqtt_store_errors_total{operation="enqueue"}') > errorsBefore, 30_000);
    } finally {
      redis.resume();
    }
    await device.inbox.next((m) => m.body.msgId === 'o1-during', 20_000, 'the offer sent during the outage');
    await acked;
    await app.inbox.next((m) => m.body.replyTo === 'o1-during', 10_000, 'its answer');
    await offer('o1-after');
    await app.inbox.next((m) => m.body.replyTo === 'o1-after', 10_000, 'the answer after the outage');
    assert.equal(closes, 0, 'no connection closed');
    assert.equal(device.inbox.messages.filter((m) => m.body.msgId === 'o1-during').length, 1, 'the offer arrived once');
  });
});
