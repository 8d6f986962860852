/**
 * App and device SDKs in Node on different nodes of one broker fabric (docs/signaling.md "One
 * broker across nodes"): two `p2pd serve` share a real Redis, the camera signals through node B,
 * the app through node A, and the app gets a direct path with the test video.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import type { DeviceServer } from '../../src/sdk/device.ts';
import { connect, isSdkError, serve } from '../../src/sdk/node.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';

const JWT = 'e2e-fabric-secret';
const signer = createHs256Signer(JWT);

describe('Node app on node A ↔ Node device on node B, one fabric', { skip: haveRedis() ? false : REDIS_MISSING }, () => {
  let redis: RedisServer;
  let a: P2pdProcess;
  let b: P2pdProcess;
  let media: TestVideoSource;
  let dev: DeviceServer;
  const conns: AppConnection[] = [];

  before(async () => {
    redis = await startRedis();
    const args = ['--jwt-secret', JWT, '--auth-secret', 'e2e-fabric-turn', '--allow-peer', '127.0.0.0/8', '--redis-url', redis.url];
    [a, b] = await Promise.all([startP2pd({ args }), startP2pd({ args })]);
    media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
    await media.start();
    dev = await serve({ server: b.httpUrl, token: await signer.sign({ sub: 'cam-f1', role: 'device' }), media });
  });
  after(async () => {
    await Promise.allSettled(conns.map((c) => c.close()));
    await dev?.close();
    await media?.stop();
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('connects directly through two nodes and receives video; a bye reaches the device', async () => {
    const token = await signer.sign({ sub: 'app-f1', role: 'app', devices: ['cam-f1'] });
    const closedOnDevice = new Promise<{ reason: string }>((resolve) => dev.once('viewer-closed', resolve));
    // Node A hears the camera's `online` through the fabric; until then it says DEVICE_OFFLINE.
    let conn: AppConnection | undefined;
    for (let i = 0; conn === undefined; i++) {
      try {
        conn = await connect({ server: a.httpUrl, token, deviceId: 'cam-f1', timeoutMs: 15_000, iceTransportPolicy: 'direct' });
      } catch (err) {
        if (!isSdkError(err, 'DEVICE_OFFLINE') || i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    conns.push(conn);
    assert.equal(conn.state, 'connected');
    assert.equal(conn.path, 'direct');
    assert.deepEqual(await conn.echo({ across: 'nodes' }), { across: 'nodes' });

    // Video: bounded by what the source produced, not by a clock (see e2e-node.test.ts).
    const producedBefore = media.frames;
    const hang = Date.now() + 90_000;
    for (;;) {
      const stats = await conn.getStats();
      if (stats.framesReceived >= 10) break;
      const produced = media.frames - producedBefore;
      if (produced >= 160) throw new Error(`the source produced ${produced} frames; ${stats.framesReceived} received (${stats.packetsReceived} RTP packets)`);
      if (Date.now() > hang) throw new Error('hang guard: no video');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(conn.deviceCodec, 'VP8');

    // Both nodes read the same session: the keepalive tracked at node A marks it connected.
    const read = async (node: P2pdProcess): Promise<{ status: string }> => (await fetch(`${node.httpUrl}/v1/sessions/${conn.sessionId}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<{ status: string }>;
    for (let i = 0; (await read(b)).status !== 'connected'; i++) {
      if (i > 200) throw new Error('the session never showed connected on node B');
      await new Promise((r) => setTimeout(r, 50));
    }
    await conn.close();
    assert.equal((await closedOnDevice).reason, 'bye');
    assert.equal(dev.viewers().length, 0);
  });
});
