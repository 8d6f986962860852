/**
 * A call that outlives its TURN credentials (docs/client.md "Long calls"): with `--session-ttl 60`
 * the REST credentials of a session expire a minute after they were minted, and a relay
 * allocation ends with them (docs/turn.md). A relay-only call (Node SDK at both ends, the test
 * video) moves to fresh credentials by itself ahead of the expiry, and keeps playing past it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import { connect, serve } from '../../src/sdk/node.ts';
import { turnExpiryMs } from '../../src/sdk/turnRenewal.ts';
import { startP2pd } from '../helpers/p2pd.ts';
import { eventually } from '../helpers/wait.ts';

const JWT = 'longcall-secret';
const signer = createHs256Signer(JWT);

// No suite-wide timeout: each step has its own bound, and the runner's --test-timeout guards a hang.
describe('a relayed call longer than its TURN credentials', () => {
  const stops: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  test('moves to fresh credentials before they expire and plays on past the expiry', async () => {
    const p2pd = await startP2pd({ args: ['--jwt-secret', JWT, '--auth-secret', 'longcall-turn', '--allow-peer', '127.0.0.0/8', '--session-ttl', '60'] });
    stops.push(() => p2pd.stop());
    const media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
    await media.start();
    stops.push(() => media.stop());
    const dev = await serve({ server: p2pd.httpUrl, token: await signer.sign({ sub: 'cam-l1', role: 'device' }), media });
    stops.push(() => dev.close());
    const token = await signer.sign({ sub: 'app-l1', role: 'app', devices: ['cam-l1'] });
    const conn = await connect({ server: p2pd.httpUrl, token, deviceId: 'cam-l1', iceTransportPolicy: 'relay', timeoutMs: 20_000 });
    stops.push(() => conn.close());
    assert.equal(conn.path, 'relay');
    let movedAt: number | undefined;
    conn.on('state', (st) => { if (st === 'reconnecting') movedAt ??= Date.now(); });

    const session = await (await fetch(`${p2pd.httpUrl}/v1/sessions/${conn.sessionId}`, { headers: { authorization: `Bearer ${token}` } })).json() as { iceServers: [] };
    const expiry = turnExpiryMs(session.iceServers);
    assert.ok(expiry !== undefined && expiry - Date.now() < 61_000, 'the credentials last the session TTL');

    // Past the expiry of the first credentials (a bound, not a speed check: the wait is the clock's).
    await sleep(Math.max(0, expiry - Date.now()) + 5_000);
    const at = await conn.getStats();
    assert.ok(conn.iceRestarts >= 1, 'an ICE restart moved the call to fresh credentials');
    // Ahead of the expiry, not a recovery after the relay died with its credentials.
    assert.ok(movedAt !== undefined && movedAt < expiry, `moved ${movedAt === undefined ? 'never' : `${movedAt - expiry} ms after the expiry`}`);
    const until = Date.now() + 60_000;
    while ((await conn.getStats()).framesReceived < at.framesReceived + 30) {
      assert.ok(Date.now() < until, `video stopped after the expiry: ${JSON.stringify(await conn.getStats())}`);
      await sleep(100);
    }
    // The fresh credentials are renewed in their turn (a fifth of their life ahead of their
    // expiry), so an ICE restart may be under way at this instant: wait for it to end.
    await eventually('the call connected again after the renewals', async () => conn.state === 'connected', 20_000);
    assert.equal((await conn.getStats()).path, 'relay');
    assert.equal(await conn.echo('after the expiry'), 'after the expiry');
  });
});
