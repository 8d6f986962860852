/**
 * The session API over real HTTP on a real `p2pd serve` (embedded default: memory store):
 * the whole life of a session, as an app and its device see it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import { turnRestPassword } from '../../src/auth/turnRest.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';

const JWT = 'api-test-secret';
const TURN_SECRET = 'api-test-turn-secret';

describe('session API over HTTP', { timeout: 30_000 }, () => {
  let p2pd: P2pdProcess;
  let app: string;
  let device: string;

  before(async () => {
    p2pd = await startP2pd({ args: ['--roles', 'stun,turn,api', '--jwt-secret', JWT, '--auth-secret', TURN_SECRET, '--region', 'eu', '--node-id', 'solo'] });
    const signer = createHs256Signer(JWT);
    app = await signer.sign({ sub: 'app-1', role: 'app', devices: ['cam-1'] });
    device = await signer.sign({ sub: 'cam-1', role: 'device' });
  });
  after(async () => { await p2pd?.stop(); });

  const req = async (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> | undefined }> => {
    const res = await fetch(`${p2pd.httpUrl}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  test('create, read as the device, trace, delete, read closed; metrics count it', async () => {
    const created = await req('POST', '/v1/sessions', app, { deviceId: 'cam-1' });
    assert.equal(created.status, 201);
    const s = created.body as { sessionId: string; turnNode: string; region: string; stunServer: string; iceServers: { urls: string[]; username?: string; credential?: string }[] };
    assert.equal(s.turnNode, 'solo');
    assert.equal(s.region, 'eu');
    assert.equal(s.stunServer, `stun:127.0.0.1:${p2pd.port}`);
    const turn = s.iceServers.find((i) => i.username);
    assert.deepEqual(turn?.urls, [`turn:127.0.0.1:${p2pd.port}?transport=udp`, `turn:127.0.0.1:${p2pd.port}?transport=tcp`]);
    assert.equal(turn?.credential, turnRestPassword(TURN_SECRET, turn?.username as string));

    const metrics = await (await fetch(`${p2pd.httpUrl}/metrics`)).text();
    assert.match(metrics, /^sessions_active [1-9]/m);

    const asDevice = await req('GET', `/v1/sessions/${s.sessionId}`, device);
    assert.equal(asDevice.status, 200);
    assert.equal(asDevice.body?.status, 'connecting');

    assert.equal((await req('DELETE', `/v1/sessions/${s.sessionId}`, device)).status, 204);
    const closed = await req('GET', `/v1/sessions/${s.sessionId}`, app);
    assert.equal(closed.body?.status, 'closed');
    const trace = await req('GET', `/v1/sessions/${s.sessionId}/trace`, app);
    assert.deepEqual((trace.body?.events as { what: string }[]).map((e) => e.what), ['new→connecting', 'connecting→closed']);
    assert.match(await (await fetch(`${p2pd.httpUrl}/metrics`)).text(), /^sessions_closed_total\{reason="deleted"\} 1$/m);
  });

  test('errors keep their codes over HTTP', async () => {
    assert.deepEqual([(await req('POST', '/v1/sessions', undefined, { deviceId: 'cam-1' })).status], [401]);
    const forbidden = await req('POST', '/v1/sessions', app, { deviceId: 'cam-2' });
    assert.equal(forbidden.status, 403);
    assert.equal((forbidden.body?.error as { code: string }).code, 'FORBIDDEN');
    const missing = await req('GET', '/v1/sessions/nope', app);
    assert.equal(missing.status, 404);
    assert.equal((missing.body?.error as { code: string }).code, 'SESSION_NOT_FOUND');
    const ice = await req('GET', '/v1/ice-servers', device);
    assert.equal(ice.status, 200);
    assert.ok((ice.body?.iceServers as unknown[]).length >= 2);
  });
});
