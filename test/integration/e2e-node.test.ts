/**
 * App and device SDKs in Node (werift) against a real `p2pd serve`: a session from nothing to a
 * working path, the data channel's echo and RTT, the test video, a clean bye, several viewers at
 * once, and the clear errors (DEVICE_OFFLINE, AUTH_FAILED, FORBIDDEN).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import type { DeviceServer } from '../../src/sdk/device.ts';
import { mqttUrlFor } from '../../src/sdk/http.ts';
import { SignalingClient, connect, isSdkError, serve } from '../../src/sdk/node.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';

const JWT = 'e2e-node-secret';
const signer = createHs256Signer(JWT);

const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/**
 * Waits until `conn` received `want` video frames. Not a fixed time: a starved machine slows the
 * encoder (ffmpeg) as much as the path, so the bound is what the source produced — it fails once
 * the source sent `want` plus 150 frames (10 s at 15 fps) after the wait began and they did not
 * arrive — with a hang guard for a source that produces nothing at all.
 */
const untilVideo = async (media: TestVideoSource, conn: AppConnection, want: number, hangMs = 90_000): Promise<void> => {
  const producedBefore = media.frames;
  const hang = Date.now() + hangMs;
  for (;;) {
    const stats = await conn.getStats();
    const received = stats.framesReceived;
    if (received >= want) return;
    const produced = media.frames - producedBefore;
    // The RTP counters say whether media reached this side at all or only no frame was made of it.
    const seen = `${received} frames received (${stats.packetsReceived} RTP packets, ${stats.bytesReceived} bytes, ${stats.packetsLost} lost, decoded ${String(stats.framesDecoded)})`;
    if (produced >= want + 150) throw new Error(`the source produced ${produced} frames since the wait began; ${seen}`);
    if (Date.now() > hang) throw new Error(`hang guard: the source produced ${produced} frames in ${hangMs} ms; ${seen}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

// No suite-wide timeout: every step below has its own bound (and the runner's --test-timeout
// guards a hang); a sum of them ran out on a busy machine while no step was stuck.
describe('Node app ↔ Node device through p2pd', () => {
  let p2pd: P2pdProcess;
  let media: TestVideoSource;
  let dev: DeviceServer;
  const conns: AppConnection[] = [];

  before(async () => {
    p2pd = await startP2pd({ args: ['--jwt-secret', JWT, '--auth-secret', 'e2e-node-turn', '--allow-peer', '127.0.0.0/8'] });
    media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
    await media.start();
    dev = await serve({ server: p2pd.httpUrl, token: await signer.sign({ sub: 'cam-n1', role: 'device' }), media });
  });
  after(async () => {
    await Promise.allSettled(conns.map((c) => c.close()));
    await dev?.close();
    await media?.stop();
    await p2pd?.stop();
  });

  test('connects directly, echoes on the data channel, receives video, and a bye closes the session', async () => {
    const token = await signer.sign({ sub: 'app-n1', role: 'app', devices: ['cam-n1'] });
    const closedOnDevice = new Promise<{ reason: string }>((resolve) => dev.once('viewer-closed', resolve));
    // `direct`: no TURN at either end, so the path cannot come out relayed on a slow machine.
    const allocations = await metricValue(p2pd.httpUrl, 'turn_sessions_total');
    const conn = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-n1', timeoutMs: 15_000, iceTransportPolicy: 'direct' });
    conns.push(conn);
    assert.equal(conn.state, 'connected');
    assert.equal(conn.path, 'direct');
    assert.equal(await metricValue(p2pd.httpUrl, 'turn_sessions_total'), allocations, 'neither end allocated on TURN');
    assert.ok(conn.setupMs !== undefined && conn.setupMs > 0 && conn.setupMs < 15_000, `setup ${conn.setupMs} ms`);

    assert.deepEqual(await conn.echo({ hello: 'camera', n: 42 }), { hello: 'camera', n: 42 });
    const binary = new Promise<string | Uint8Array>((resolve) => conn.once('message', resolve));
    conn.send(new Uint8Array([1, 2, 3, 250]));
    assert.deepEqual([...(await binary) as Uint8Array], [1, 2, 3, 250]);
    // Measured, not judged: speed targets live in `npm run bench -- e2e`, never in a timed test.
    const rtt = await conn.ping();
    assert.ok(Number.isFinite(rtt) && rtt >= 0, `rtt ${rtt}`);

    await untilVideo(media, conn, 10);
    const stats = await conn.getStats();
    assert.equal(stats.path, 'direct');
    assert.ok(stats.bytesReceived > 2_000, `bytes ${stats.bytesReceived}`);
    assert.equal(conn.deviceCodec, 'VP8');

    // Frame timestamps: the device's encoder clock to this side's arrival.
    const latencies: number[] = [];
    conn.on('frame', (f) => latencies.push(f.latencyMs));
    conn.enableFrameTimestamps();
    await until('frame latencies', () => latencies.length >= 5);
    assert.ok(latencies.every((l) => Number.isFinite(l) && l >= 0), `latencies ${latencies.join(',')}`);

    // The keepalive carried the outcome: the service marked the session connected.
    const read = async (): Promise<{ status: string }> => (await fetch(`${p2pd.httpUrl}/v1/sessions/${conn.sessionId}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<{ status: string }>;
    await until('status connected', async () => (await read()).status === 'connected');

    await conn.close();
    assert.equal((await closedOnDevice).reason, 'bye');
    await until('status closed', async () => (await read()).status === 'closed');
    assert.equal(dev.viewers().length, 0);
  });

  test('an app holding its broker connection sends its first offer with the session request, and connects', async () => {
    const token = await signer.sign({ sub: 'app-n4', role: 'app', devices: ['cam-n1'] });
    const signaling = await SignalingClient.open({ url: mqttUrlFor(p2pd.httpUrl), id: 'app-n4', role: 'app', token });
    try {
      const offers = await metricValue(p2pd.httpUrl, 'signaling_messages_total{type="offer"}');
      const conn = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-n1', signaling, timeoutMs: 15_000, iceTransportPolicy: 'direct' });
      conns.push(conn);
      assert.equal(conn.state, 'connected');
      const { session, offerSent, answer } = conn.setup.phases;
      assert.ok(offerSent !== undefined && session !== undefined && offerSent <= session, `the offer left with the session request (offerSent ${offerSent}, session ${session})`);
      assert.ok(answer !== undefined, 'the device answered it');
      assert.equal(await metricValue(p2pd.httpUrl, 'signaling_messages_total{type="offer"}'), offers + 1, 'one offer, delivered by the service, none resent over MQTT');
      assert.deepEqual(await conn.echo('early'), 'early');
      await untilVideo(media, conn, 5);
      await conn.close();
      // The peer was made before the session's ICE servers existed: TURN comes from the session.
      const relayed = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-n1', signaling, timeoutMs: 15_000, iceTransportPolicy: 'relay' });
      conns.push(relayed);
      assert.equal(relayed.path, 'relay');
      assert.ok((relayed.setup.phases.offerSent ?? Infinity) <= (relayed.setup.phases.session ?? 0));
      assert.deepEqual(await relayed.echo('relayed'), 'relayed');
      await relayed.close();
    } finally {
      await signaling.close();
    }
  });

  test('serves several viewers at once', async () => {
    const token = await signer.sign({ sub: 'app-n2', role: 'app', devices: ['*'] });
    const earlier = dev.viewers().length; // a failed test before this one may have left its viewer
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => connect({ server: p2pd.httpUrl, token, deviceId: 'cam-n1', timeoutMs: 15_000 })));
    conns.push(a as AppConnection, b as AppConnection, c as AppConnection);
    assert.equal(dev.viewers().length, earlier + 3);
    for (const conn of [a, b, c] as AppConnection[]) {
      assert.equal(await conn.echo(conn.sessionId), conn.sessionId);
      await untilVideo(media, conn, 5);
    }
    await Promise.all([a, b, c].map((x) => (x as AppConnection).close()));
    await until('viewers gone', () => dev.viewers().length === earlier, 5000);
  });

  test('fails clearly: DEVICE_OFFLINE, AUTH_FAILED, FORBIDDEN', async () => {
    const token = await signer.sign({ sub: 'app-n3', role: 'app', devices: ['cam-n1', 'cam-none'] });
    const t0 = Date.now();
    await assert.rejects(connect({ server: p2pd.httpUrl, token, deviceId: 'cam-none' }), (e) => isSdkError(e, 'DEVICE_OFFLINE'));
    assert.ok(Date.now() - t0 < 5000, 'an offline device is reported at once, not after a timeout');
    const forged = await createHs256Signer('another-key').sign({ sub: 'app-n3', role: 'app', devices: ['*'] });
    await assert.rejects(connect({ server: p2pd.httpUrl, token: forged, deviceId: 'cam-n1' }), (e) => isSdkError(e, 'AUTH_FAILED'));
    await assert.rejects(connect({ server: p2pd.httpUrl, token, deviceId: 'cam-other' }), (e) => isSdkError(e, 'FORBIDDEN'));
    await assert.rejects(connect({ server: 'http://127.0.0.1:9', token, deviceId: 'cam-n1', timeoutMs: 3000 }),
      (e) => isSdkError(e, 'SIGNALING_UNAVAILABLE') || isSdkError(e, 'TIMEOUT'));
  });

  test('with a --jwt-secret there are no development tokens', async () => {
    assert.equal((await fetch(`${p2pd.httpUrl}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"app"}' })).status, 404);
    assert.deepEqual(await (await fetch(`${p2pd.httpUrl}/viewer-config.json`)).json(), { devTokens: false });
  });
});

describe('the service\'s --max-viewers: the session answer refuses a full device', () => {
  let p2pd: P2pdProcess;
  let dev: DeviceServer;
  const conns: AppConnection[] = [];

  before(async () => {
    p2pd = await startP2pd({ args: ['--jwt-secret', JWT, '--auth-secret', 'e2e-node-turn', '--allow-peer', '127.0.0.0/8', '--max-viewers', '2'] });
    // The device's own cap (10) is above the service's: what refuses the third viewer is the session request.
    dev = await serve({ server: p2pd.httpUrl, token: await signer.sign({ sub: 'cam-cap', role: 'device' }) });
  });
  after(async () => {
    await Promise.allSettled(conns.map((c) => c.close()));
    await dev?.close();
    await p2pd?.stop();
  });

  test('a third viewer gets DEVICE_BUSY from its session request, before any offer; a viewer that leaves frees the slot', async () => {
    const join = async (sub: string): Promise<AppConnection> => {
      const conn = await connect({ server: p2pd.httpUrl, token: await signer.sign({ sub, role: 'app', devices: ['cam-cap'] }), deviceId: 'cam-cap', timeoutMs: 15_000, iceTransportPolicy: 'direct' });
      conns.push(conn);
      return conn;
    };
    const first = await join('app-v1');
    await join('app-v2');
    assert.equal(dev.viewers().length, 2);
    const offersSeen = dev.viewers().length;
    const refusedBefore = await metricValue(p2pd.httpUrl, 'sessions_refused_total{code="DEVICE_BUSY"}');
    const t0 = Date.now();
    await assert.rejects(join('app-v3'), (e) => isSdkError(e, 'DEVICE_ERROR') && e.serverCode === 'DEVICE_BUSY');
    assert.ok(Date.now() - t0 < 5000, 'refused by the session request at once, not after a negotiation');
    assert.equal(await metricValue(p2pd.httpUrl, 'sessions_refused_total{code="DEVICE_BUSY"}'), refusedBefore + 1);
    assert.equal(dev.viewers().length, offersSeen, 'the device never heard of the refused viewer');
    // Over HTTP as any client sees it.
    const raw = await fetch(`${p2pd.httpUrl}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await signer.sign({ sub: 'app-v4', role: 'app', devices: ['cam-cap'] })}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'cam-cap' }),
    });
    assert.equal(raw.status, 409);
    assert.equal(((await raw.json()) as { error: { code: string } }).error.code, 'DEVICE_BUSY');
    // A viewer leaves (bye closes its session): the next one gets in.
    await first.close();
    const v1 = await signer.sign({ sub: 'app-v1', role: 'app', devices: ['cam-cap'] });
    await until('the first viewer\'s session closed', async () => {
      const r = await fetch(`${p2pd.httpUrl}/v1/sessions/${first.sessionId}`, { headers: { authorization: `Bearer ${v1}` } });
      return r.ok && ((await r.json()) as { status: string }).status === 'closed';
    }, 10_000);
    const third = await join('app-v3');
    assert.equal(third.state, 'connected');
    assert.equal(await third.echo('after a slot freed'), 'after a slot freed');
  });
});
