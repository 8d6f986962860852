/**
 * Two signaling nodes on one Redis (the broker fabric: docs/signaling.md "One broker across
 * nodes"), and a camera with test video and an app both signaling through the first: what the
 * failover and drain tests start from before they stop node A.
 */
import assert from 'node:assert/strict';
import { createHs256Signer, type TokenSigner } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import type { DeviceServer } from '../../src/sdk/device.ts';
import { SignalingClient, connect, isSdkError, serve } from '../../src/sdk/node.ts';
import { startP2pd, type P2pdProcess } from './p2pd.ts';
import { startRedis, type RedisServer } from './redis.ts';
import { eventually } from './wait.ts';

/** A node's MQTT over WebSocket URL, what it lists first. */
export const wsOf = (node: P2pdProcess): string => `${node.httpUrl.replace(/^http/, 'ws')}/mqtt`;

/** Resolves with the time of the client's next `up` after a reconnection. */
export function nextReconnect(sig: SignalingClient): Promise<number> {
  return new Promise((resolve) => {
    const off = sig.on('up', ({ reconnect }) => {
      if (!reconnect) return;
      off();
      resolve(Date.now());
    });
  });
}

export interface TwoNodes {
  readonly redis: RedisServer;
  readonly a: P2pdProcess;
  readonly b: P2pdProcess;
  readonly media: TestVideoSource;
  readonly sign: TokenSigner['sign'];
  /** Stops everything; node A with `stopA` (it may be gone already). */
  stop(stopA: (a: P2pdProcess) => Promise<unknown>): Promise<void>;
}

/** Redis, two `p2pd serve` on it with `args` (and the JWT secret), and a test video source. */
export async function startTwoNodes(jwtSecret: string, args: readonly string[]): Promise<TwoNodes> {
  const redis = await startRedis();
  const all = ['--jwt-secret', jwtSecret, '--allow-peer', '127.0.0.0/8', '--redis-url', redis.url, '--heartbeat-interval', '1', ...args];
  const [a, b] = await Promise.all([startP2pd({ args: all }), startP2pd({ args: all })]);
  const media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
  await media.start();
  const signer = createHs256Signer(jwtSecret);
  return {
    redis, a, b, media,
    sign: (claims) => signer.sign(claims),
    async stop(stopA) {
      await media.stop();
      await Promise.allSettled([stopA(a), b.stop()]);
      await redis.stop();
    },
  };
}

export interface OnNodeA {
  readonly devSig: SignalingClient;
  readonly appSig: SignalingClient;
  readonly dev: DeviceServer;
  readonly conn: AppConnection;
  readonly appToken: string;
  close(): Promise<void>;
}

/**
 * Once node A lists both nodes: camera `deviceId` serving the test video and app `appId`, each
 * with its own signaling client on node A, connected on a direct path.
 */
export async function connectOnNodeA(nodes: TwoNodes, deviceId: string, appId: string, opts: { presence?: boolean } = {}): Promise<OnNodeA> {
  const { a } = nodes;
  const devToken = await nodes.sign({ sub: deviceId, role: 'device' });
  const appToken = await nodes.sign({ sub: appId, role: 'app', devices: [deviceId] });
  await eventually('node A lists both signaling nodes', async () => {
    const r = await fetch(`${a.httpUrl}/v1/signaling`, { headers: { authorization: `Bearer ${devToken}` } });
    return ((await r.json()) as { signaling: unknown[] }).signaling.length === 2;
  });
  const devSig = await SignalingClient.open({ url: wsOf(a), id: deviceId, role: 'device', token: devToken });
  const dev = await serve({ server: a.httpUrl, token: devToken, media: nodes.media, signaling: devSig });
  const appSig = await SignalingClient.open({ url: wsOf(a), id: appId, role: 'app', token: appToken });
  if (opts.presence === true) await appSig.subscribePresence([deviceId]);
  let conn: AppConnection | undefined;
  // The camera's presence may reach the service a moment after its login.
  for (let i = 0; conn === undefined; i++) {
    try {
      conn = await connect({ server: a.httpUrl, token: appToken, deviceId, timeoutMs: 15_000, iceTransportPolicy: 'direct', signaling: appSig });
    } catch (err) {
      if (!isSdkError(err, 'DEVICE_OFFLINE') || i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal(conn.path, 'direct');
  assert.equal(appSig.url, wsOf(a));
  assert.equal(devSig.url, wsOf(a));
  const connected = conn;
  return {
    devSig, appSig, dev, conn: connected, appToken,
    async close() {
      await connected.close().catch(() => undefined);
      await dev.close();
      await Promise.allSettled([devSig.close(), appSig.close()]);
    },
  };
}
