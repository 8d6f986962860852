/**
 * The SDK's device keeps a persistent session (docs/signaling.md "Delivery"): two `p2pd serve` on
 * one Redis (the broker fabric), an SDK device on node A and an app on node B. Node A gets
 * SIGKILL; while the device is away (its reconnection held by fake time), the app sends it a QoS 1
 * `bye`, which the fabric acknowledges. Once the device is back — on node B, the next URL of its
 * list — the `bye` reaches it: acknowledged, then delivered, across the failover. A device that
 * restarts takes its session over (the same client id) instead of leaving one behind.
 *
 * The same kill tests the dead node's wills (src/broker/fabricWills.ts): a device on node A that
 * does not come back gets its `offline` will published by node B, once, and the dead broker
 * leaves Redis' list of brokers with wills.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignalingClient } from '../../src/sdk/node.ts';
import type { SignalMessage } from '../../src/sdk/signaling.ts';
import { fakeClock } from '../helpers/fakeClock.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { closeRedisClient, createRedisClient, waitReady } from '../../src/redis.ts';
import { WILL_BROKERS_KEY } from '../../src/broker/fabricWills.ts';
import { JWT_SECRET, connectPeer, token, type Peer } from '../helpers/signaling.ts';
import { wsOf } from '../helpers/twoNodes.ts';
import { eventually } from '../helpers/wait.ts';

describe("the SDK device's persistent session across a node's death", { skip: haveRedis() ? false : REDIS_MISSING, timeout: 180_000 }, () => {
  let redis: RedisServer;
  let a: P2pdProcess;
  let b: P2pdProcess;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    redis = await startRedis();
    const args = ['--jwt-secret', JWT_SECRET, '--roles', 'stun,turn,signal,api', '--auth-secret', 'sdk-session-turn-secret', '--redis-url', redis.url, '--heartbeat-interval', '1'];
    [a, b] = await Promise.all([startP2pd({ args }), startP2pd({ args })]);
  });
  after(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('a QoS 1 message acknowledged while the device is away reaches it once it is back on the other node; a restart takes the session over; a device that does not come back gets its will published once', async () => {
    const appTok = await token('app_ps1', 'app', ['dev_ps1']);
    const devTok = await token('dev_ps1', 'device');
    const clock = fakeClock(Date.now());
    const devSig = await SignalingClient.open({
      url: wsOf(a), servers: [{ urls: [wsOf(a)] }, { urls: [wsOf(b)] }], id: 'dev_ps1', role: 'device', token: devTok, clock, reconnectMs: 1000,
    });
    closers.push(() => devSig.close());
    const received: SignalMessage[] = [];
    devSig.on('message', (m) => received.push(m));
    const app: Peer = await connectPeer(wsOf(b), 'app_ps1', 'app', { token: appTok });
    closers.push(() => app.close());
    // A device on node A that will not come back, and who hears its presence on node B.
    const gone = await connectPeer(wsOf(a), 'dev_ps2', 'device');
    const watcher = await connectPeer(wsOf(b), 'app_ps2', 'app', { devices: ['dev_ps2'], subscribe: false });
    closers.push(() => watcher.close());
    const presence: string[] = [];
    watcher.client.on('message', (topic, payload) => { if (topic === 'p2p/presence/device/dev_ps2') presence.push(payload.toString()); });
    await watcher.client.subscribeAsync('p2p/presence/device/dev_ps2', { qos: 1 });
    await eventually('the retained online', () => presence.includes('online'), 10_000);
    const db = createRedisClient({ urls: [redis.url], name: 'sdk-session-test', commandTimeoutMs: 5000 });
    closers.push(() => closeRedisClient(db));
    assert.ok(await waitReady(db, 10_000));
    const brokersWithWills = await db.smembers(WILL_BROKERS_KEY);
    assert.equal(brokersWithWills.length, 1, "node A's broker holds wills (its two devices'), node B's none");
    assert.equal(await db.exists('will'), 0, "no list of all wills (the library's)");

    // A session, asked for at node B once it has heard the device's `online` through the fabric.
    let sessionId = '';
    await eventually('a session from node B', async () => {
      const r = await fetch(`${b.httpUrl}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${appTok}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: 'dev_ps1' }) });
      if (r.status !== 201) return false;
      sessionId = ((await r.json()) as { sessionId: string }).sessionId;
      return true;
    }, 20_000);
    await eventually('the session notice reaches the device', () => received.some((m) => m.type === 'session' && m.sessionId === sessionId), 10_000);

    const down = new Promise<void>((resolve) => { const off = devSig.on('down', () => { off(); resolve(); }); });
    await a.stop('SIGKILL');
    void gone.client.end(true);
    await down;
    // Away: its reconnection waits on fake time. The fabric acknowledges the bye (PUBACK) meanwhile.
    const bye = await app.send('dev_ps1', { type: 'bye', sessionId, payload: { reason: 'sent while the device was away' } });
    assert.ok(!received.some((m) => m.msgId === bye));

    const back = new Promise<void>((resolve) => { const off = devSig.on('up', () => { off(); resolve(); }); });
    await clock.advance(1000);
    await back;
    assert.equal(devSig.url, wsOf(b), 'back at the next URL of its list');
    await eventually('the bye acknowledged while it was away reaches the device', () => received.some((m) => m.msgId === bye), 10_000);
    assert.equal(received.filter((m) => m.msgId === bye).length, 1, 'once');

    // Node A's wills: node B publishes them once A has missed 3 heartbeats (1 s here), at its next check.
    await eventually("the gone device's will, published by node B", () => presence.includes('offline'), 30_000);
    await eventually('the dead broker leaves the list of brokers with wills', async () => !(await db.smembers(WILL_BROKERS_KEY)).includes(brokersWithWills[0] as string), 30_000);
    assert.equal(presence.filter((p) => p === 'offline').length, 1, 'published once');

    // A restart (a new client, the same device): it takes the session over, and it gets what is sent next.
    await devSig.close();
    const again = await SignalingClient.open({ url: wsOf(b), id: 'dev_ps1', role: 'device', token: devTok });
    closers.push(() => again.close());
    const after: SignalMessage[] = [];
    again.on('message', (m) => after.push(m));
    const next = await app.send('dev_ps1', { type: 'bye', sessionId, payload: { reason: 'after the restart' } });
    await eventually('the restarted device gets the next message', () => after.some((m) => m.msgId === next), 10_000);
    assert.equal(after.filter((m) => m.msgId === bye).length, 0, 'what the first client acknowledged is not sent again');

    // A live broker the others took for dead (its set emptied, it left the list) is listed again by its next will.
    const listed = await db.smembers(WILL_BROKERS_KEY);
    assert.equal(listed.length, 1, "node B's broker holds the restarted device's will");
    await db.srem(WILL_BROKERS_KEY, listed[0] as string);
    const late = await connectPeer(wsOf(b), 'dev_ps3', 'device');
    closers.push(() => late.close());
    assert.deepEqual(await db.smembers(WILL_BROKERS_KEY), listed, "node B's broker is listed again");
  });
});
