/**
 * A signaling node dies mid-session (docs/signaling.md "Finding a node"): two `p2pd serve` on one
 * Redis (the broker fabric), a Node app and a Node camera with test video both signaling through
 * node A. Node A gets SIGKILL: the direct path holds (the data channel still echoes), both
 * clients move to node B — the URLs the service listed — within the backoff's bound, and an ICE
 * restart goes through node B.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import type { DeviceServer } from '../../src/sdk/device.ts';
import { SignalingClient, connect, isSdkError, serve } from '../../src/sdk/node.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';

const JWT = 'e2e-failover-secret';
const signer = createHs256Signer(JWT);
const wsOf = (node: P2pdProcess): string => `${node.httpUrl.replace(/^http/, 'ws')}/mqtt`;
/** The first reconnection waits below 1 s (full jitter), then the connection and the login: far below this. */
const BACK_WITHIN_MS = 15_000;

/** Resolves with the time of the next `up` after a reconnection. */
const nextUp = (sig: SignalingClient): Promise<number> => new Promise((resolve) => {
  const off = sig.on('up', ({ reconnect }) => {
    if (!reconnect) return;
    off();
    resolve(Date.now());
  });
});

describe('a signaling node dies mid-session: the path holds, both clients move to the other node', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 180_000 }, () => {
  let redis: RedisServer;
  let a: P2pdProcess;
  let b: P2pdProcess;
  let media: TestVideoSource;
  let dev: DeviceServer | undefined;
  let conn: AppConnection | undefined;
  const clients: SignalingClient[] = [];

  before(async () => {
    redis = await startRedis();
    const args = ['--jwt-secret', JWT, '--auth-secret', 'e2e-failover-turn', '--allow-peer', '127.0.0.0/8', '--redis-url', redis.url, '--heartbeat-interval', '1'];
    [a, b] = await Promise.all([startP2pd({ args }), startP2pd({ args })]);
    media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
    await media.start();
  });
  after(async () => {
    await conn?.close().catch(() => undefined);
    await dev?.close();
    await Promise.allSettled(clients.map((c) => c.close()));
    await media?.stop();
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('SIGKILL to node A: echo still works, app and camera are back on node B, an ICE restart goes through it', async () => {
    const devToken = await signer.sign({ sub: 'cam-fo', role: 'device' });
    const appToken = await signer.sign({ sub: 'app-fo', role: 'app', devices: ['cam-fo'] });
    // Both nodes are in the registry before the lists are read.
    for (let i = 0; ; i++) {
      const r = await fetch(`${a.httpUrl}/v1/signaling`, { headers: { authorization: `Bearer ${devToken}` } });
      assert.equal(r.status, 200);
      const { signaling } = (await r.json()) as { signaling: { urls: string[] }[] };
      if (signaling.length === 2) {
        assert.deepEqual(new Set(signaling.map((s) => s.urls[0])), new Set([wsOf(a), wsOf(b)]), 'each node by its MQTT over WebSocket first');
        assert.ok(signaling.every((s) => s.urls[1]?.startsWith('mqtt://127.0.0.1:')), 'and its MQTT over TCP');
        break;
      }
      if (i > 100) throw new Error(`node A lists ${JSON.stringify(signaling)}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // The camera and the app on node A, each with its own signaling client to watch where it is.
    const devSig = await SignalingClient.open({ url: wsOf(a), id: 'cam-fo', role: 'device', token: devToken });
    clients.push(devSig);
    dev = await serve({ server: a.httpUrl, token: devToken, media, signaling: devSig });
    const appSig = await SignalingClient.open({ url: wsOf(a), id: 'app-fo', role: 'app', token: appToken });
    clients.push(appSig);
    for (let i = 0; conn === undefined; i++) {
      try {
        conn = await connect({ server: a.httpUrl, token: appToken, deviceId: 'cam-fo', timeoutMs: 15_000, iceTransportPolicy: 'direct', signaling: appSig });
      } catch (err) {
        if (!isSdkError(err, 'DEVICE_OFFLINE') || i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(conn.path, 'direct');
    assert.deepEqual(await conn.echo({ before: 'kill' }), { before: 'kill' });
    // Both learnt the other node: the app from its session answer, the camera from GET /v1/signaling.
    for (let i = 0; !devSig.urlList.includes(wsOf(b)); i++) {
      if (i > 100) throw new Error(`the camera never learnt node B: ${devSig.urlList.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(appSig.urlList.includes(wsOf(b)), `the app's list: ${appSig.urlList.join(', ')}`);
    assert.equal(appSig.url, wsOf(a));
    assert.equal(devSig.url, wsOf(a));

    const appBack = nextUp(appSig);
    const devBack = nextUp(devSig);
    const killedAt = Date.now();
    await a.stop('SIGKILL');

    // The path is peer to peer: it does not go through the node that died.
    assert.deepEqual(await conn.echo({ after: 'kill' }), { after: 'kill' });
    const deadline = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`not back on node B within ${BACK_WITHIN_MS} ms (app ${appSig.url} up=${appSig.connected}, camera ${devSig.url} up=${devSig.connected})`)), BACK_WITHIN_MS).unref();
    });
    const [appAt, devAt] = await Promise.race([Promise.all([appBack, devBack]), deadline]);
    assert.equal(appSig.url, wsOf(b));
    assert.equal(devSig.url, wsOf(b));
    process.stdout.write(`# back on node B after: app ${appAt - killedAt} ms, camera ${devAt - killedAt} ms\n`);

    // An ICE restart: offer and answer through node B, the path up again, still direct.
    const restartsBefore = conn.iceRestarts;
    await conn.restartIce();
    assert.ok(conn.iceRestarts > restartsBefore, 'a restart ran');
    assert.equal(conn.state, 'connected');
    assert.deepEqual(await conn.echo({ after: 'restart' }), { after: 'restart' });

    // Video still comes (bounded by what the source produced, not by a clock).
    const before = (await conn.getStats()).framesReceived;
    const producedBefore = media.frames;
    for (;;) {
      if ((await conn.getStats()).framesReceived >= before + 5) break;
      if (media.frames - producedBefore > 150) throw new Error('no video after the restart');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Node B serves the session: it reads it connected.
    const s = await fetch(`${b.httpUrl}/v1/sessions/${conn.sessionId}`, { headers: { authorization: `Bearer ${appToken}` } });
    assert.equal(s.status, 200);
    const body = (await s.json()) as { status: string; signaling: { urls: string[] }[] };
    assert.ok(body.signaling.some((x) => x.urls[0] === wsOf(b)), 'node B lists itself');
  });
});
