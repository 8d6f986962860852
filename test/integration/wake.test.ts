/**
 * Sleeping cameras (docs/operations.md "Sleeping cameras") against a real `p2pd serve` with
 * --wake-timeout and --wake-webhook: an app connects (the Node SDK) to a camera that is offline;
 * the node POSTs a wake request to the test's webhook receiver, which starts the camera (the SDK
 * device); the app's session answer waits for it and the call comes up with a data channel echo,
 * the session trace showing the wake. A camera that never wakes: DEVICE_OFFLINE after the timeout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHs256Signer } from '../../src/auth/token.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import type { DeviceServer } from '../../src/sdk/device.ts';
import { connect, isSdkError, serve } from '../../src/sdk/node.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';

const JWT = 'wake-secret';
const signer = createHs256Signer(JWT);
/** The camera here starts in-process (no cold start), well inside this. */
const WAKE_TIMEOUT_SEC = 8;

interface WakeRequest { type: string; deviceId: string; requestedAt: number; timeoutSec: number }

describe('sleeping cameras: a wake instead of DEVICE_OFFLINE', () => {
  let p2pd: P2pdProcess;
  let hook: Server;
  const wakes: WakeRequest[] = [];
  const devices: DeviceServer[] = [];
  const conns: AppConnection[] = [];
  /** Cameras the receiver starts when asked to wake them. */
  const wakeable = new Set<string>();

  before(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        const w = JSON.parse(body) as WakeRequest;
        wakes.push(w);
        res.writeHead(204).end();
        // The push service wakes the camera: it comes online as a device does after sleeping.
        if (wakeable.has(w.deviceId)) {
          void signer.sign({ sub: w.deviceId, role: 'device' })
            .then((token) => serve({ server: p2pd.httpUrl, token }))
            .then((d) => devices.push(d));
        }
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const addr = hook.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    p2pd = await startP2pd({
      args: ['--jwt-secret', JWT, '--auth-secret', 'wake-turn', '--allow-peer', '127.0.0.0/8',
        '--wake-timeout', String(WAKE_TIMEOUT_SEC), '--wake-webhook', `http://127.0.0.1:${port}/wake`],
    });
  });
  after(async () => {
    await Promise.allSettled(conns.map((c) => c.close()));
    await Promise.allSettled(devices.map((d) => d.close()));
    await p2pd?.stop();
    await new Promise((r) => hook?.close(r));
  });

  test('a camera asleep when the app connects is woken by the webhook, and the call comes up', async () => {
    wakeable.add('cam-sleepy');
    const token = await signer.sign({ sub: 'app-w1', role: 'app', devices: ['cam-sleepy'] });
    const t0 = Date.now();
    const conn = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-sleepy', timeoutMs: 60_000, iceTransportPolicy: 'direct' });
    conns.push(conn);
    assert.equal(conn.state, 'connected');
    assert.deepEqual(await conn.echo({ after: 'wake' }), { after: 'wake' });
    const mine = wakes.filter((w) => w.deviceId === 'cam-sleepy');
    assert.equal(mine.length, 1, 'one wake request');
    assert.equal(mine[0]?.type, 'wake');
    assert.equal(mine[0]?.timeoutSec, WAKE_TIMEOUT_SEC);
    assert.ok((mine[0]?.requestedAt ?? 0) >= t0 - 1000);
    // The trace shows when the wake was asked for and when the camera came: setup counts from it.
    const res = await fetch(`${p2pd.httpUrl}/v1/sessions/${conn.sessionId}/trace`, { headers: { authorization: `Bearer ${token}` } });
    const { events } = (await res.json()) as { events: { at: number; kind: string; what: string; detail?: { waitedMs?: number } }[] };
    const wake = events.find((e) => e.what === 'wake');
    const woke = events.find((e) => e.what === 'woke');
    assert.ok(wake && woke, JSON.stringify(events));
    assert.equal(wake.at, mine[0]?.requestedAt);
    assert.equal(woke.detail?.waitedMs, woke.at - wake.at);
    assert.equal(await metricValue(p2pd.httpUrl, 'wakes_total{outcome="woke"}'), 1);
  });

  test('a camera that never wakes: DEVICE_OFFLINE once the wake timeout runs out', async () => {
    const token = await signer.sign({ sub: 'app-w2', role: 'app', devices: ['cam-never'] });
    const t0 = Date.now();
    await assert.rejects(connect({ server: p2pd.httpUrl, token, deviceId: 'cam-never', timeoutMs: 60_000 }), (e) => isSdkError(e, 'DEVICE_OFFLINE'));
    assert.ok(Date.now() - t0 >= WAKE_TIMEOUT_SEC * 1000 - 500, 'it waited for the wake');
    assert.equal(wakes.filter((w) => w.deviceId === 'cam-never').length, 1);
    assert.equal(await metricValue(p2pd.httpUrl, 'wakes_total{outcome="timeout"}'), 1);
  });
});
