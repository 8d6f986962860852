/**
 * Recovery, with the SDK in Node (werift) and real processes:
 * - the broker (the embedded one: the whole one-node p2pd) restarts mid-session: the P2P path
 *   keeps working meanwhile, both sides reconnect to signaling, the app re-creates the session
 *   the new process does not know, and an ICE restart through the new broker succeeds;
 * - the device (a `p2pd device` process) is killed and restarted: the app gets a clear error
 *   (PEER_GONE: the new device does not know the session) and a new connect() succeeds.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import type { DeviceServer } from '../../src/sdk/device.ts';
import type { SdkError } from '../../src/sdk/errors.ts';
import { connect, serve } from '../../src/sdk/node.ts';
import { startDevice, type DeviceProcess } from '../helpers/device.ts';
import { STARTUP_TIMEOUT_MS, startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';

const JWT = 'e2e-recovery-secret';
const signer = createHs256Signer(JWT);

/**
 * Listens from now on (so an early event is not missed), but `wait()` starts its bound only when
 * called: a bound must not include a step before it (stopping or starting a whole p2pd, which on
 * a busy machine takes many seconds of its own).
 */
function latch<T>(subscribe: (done: (v: T) => void) => void): { wait(what: string, timeoutMs: number): Promise<T> } {
  let fired: { v: T } | undefined;
  let notify: (() => void) | undefined;
  subscribe((v) => { fired ??= { v }; notify?.(); });
  return {
    wait: (what, timeoutMs) => new Promise((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); resolve((fired as { v: T }).v); };
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      if (fired) done();
      else notify = done;
    }),
  };
}

// No suite-wide timeout: every step below has its own bound (and the runner's --test-timeout
// guards a hang); a sum of them ran out on a busy machine while no step was stuck.
describe('recovery', () => {
  const stops: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  test('the broker restarts mid-session: the path holds, signaling comes back, an ICE restart goes through the new broker', async () => {
    const [port, http, mqtt] = [await freePort(), await freePort(), await freePort()];
    const args = ['--port', String(port), '--http', `127.0.0.1:${http}`, '--mqtt', `127.0.0.1:${mqtt}`,
      '--jwt-secret', JWT, '--auth-secret', 'e2e-recovery-turn', '--allow-peer', '127.0.0.0/8'];
    let p2pd: P2pdProcess = await startP2pd({ args });
    stops.push(() => p2pd.stop());
    const dev: DeviceServer = await serve({ server: p2pd.httpUrl, token: await signer.sign({ sub: 'cam-r1', role: 'device' }) });
    stops.push(() => dev.close());
    const token = await signer.sign({ sub: 'app-r1', role: 'app', devices: ['cam-r1'] });
    const conn: AppConnection = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-r1', keepaliveMs: 1000, timeoutMs: 15_000 });
    stops.push(() => conn.close());
    const errors: SdkError[] = [];
    conn.on('error', (e) => errors.push(e));
    assert.equal(await conn.echo('before'), 'before');

    const appDown = latch<string>((done) => conn.on('signaling', (s) => { if (s === 'down') done(s); }));
    const devDown = latch<string>((done) => dev.on('signaling', (s) => { if (s === 'down') done(s); }));
    await p2pd.stop();
    await Promise.all([appDown.wait('app signaling down', 10_000), devDown.wait('device signaling down', 10_000)]);
    // The P2P path does not need the service.
    assert.equal(await conn.echo('during the outage'), 'during the outage');
    assert.equal(conn.state, 'connected');

    const appUp = latch<string>((done) => conn.on('signaling', (s) => { if (s === 'up') done(s); }));
    const devUp = latch<string>((done) => dev.on('signaling', (s) => { if (s === 'up') done(s); }));
    p2pd = await startP2pd({ args });
    await Promise.all([appUp.wait('app signaling up', 20_000), devUp.wait('device signaling up', 20_000)]);

    // The new process never heard of the session: the app creates it again under its id.
    const session = async (): Promise<{ status?: string }> =>
      (await fetch(`${p2pd.httpUrl}/v1/sessions/${conn.sessionId}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<{ status?: string }>;
    const until = Date.now() + 10_000;
    while ((await session()).status !== 'connected' && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    assert.equal((await session()).status, 'connected');

    // Signaling works end to end again: an ICE restart negotiates through the new broker.
    const restarts = conn.iceRestarts;
    await conn.restartIce();
    assert.equal(conn.state, 'connected');
    assert.ok(conn.iceRestarts > restarts);
    assert.equal(await conn.echo('after'), 'after');
    assert.deepEqual(errors, []);
  });

  test('the device restarts: the app gets PEER_GONE, then connects again', async () => {
    const p2pd = await startP2pd({ args: ['--jwt-secret', JWT, '--auth-secret', 'e2e-recovery-turn', '--allow-peer', '127.0.0.0/8'] });
    stops.push(() => p2pd.stop());
    const deviceToken = await signer.sign({ sub: 'cam-r2', role: 'device' });
    let device: DeviceProcess = await startDevice({ server: p2pd.httpUrl, id: 'cam-r2', token: deviceToken, args: ['--no-video'] });
    stops.push(() => device.stop('SIGKILL'));
    const token = await signer.sign({ sub: 'app-r2', role: 'app', devices: ['cam-r2'] });
    // The recovery window outlasts the device's restart (a cold start the helper bounds by
    // STARTUP_TIMEOUT_MS): the app's ICE-restart offers then reach the new device, whatever the
    // machine's load, instead of running out while it is still starting (DEVICE_OFFLINE).
    const first = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-r2', livenessMs: 3000, recoveryMs: STARTUP_TIMEOUT_MS + 20_000 });
    stops.push(() => first.close());
    assert.equal(await first.echo(1), 1);

    const failed = latch<SdkError>((done) => first.on('error', done));
    const closed = latch<{ reason: string; error?: SdkError }>((done) => first.on('close', done));
    await device.stop('SIGKILL');
    device = await startDevice({ server: p2pd.httpUrl, id: 'cam-r2', token: deviceToken, args: ['--no-video'] });
    // Back, the device does not know the session: the next ICE-restart offer ends in PEER_GONE
    // at once (the code proves it: running out of recoveryMs would be DEVICE_OFFLINE or ICE_FAILED).
    const err = await failed.wait('the connection error', 30_000);
    assert.equal(err.code, 'PEER_GONE', `${err.code}: ${err.message}`);
    assert.equal((await closed.wait('the close', 30_000)).error?.code, 'PEER_GONE');
    assert.equal(first.state, 'closed');

    const second = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-r2', timeoutMs: 15_000 });
    stops.push(() => second.close());
    assert.equal(second.state, 'connected');
    assert.notEqual(second.sessionId, first.sessionId);
    assert.equal(await second.echo('again'), 'again');
  });
});
