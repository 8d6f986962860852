import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from './server.ts';
import { sessionRoutes } from './sessions.ts';
import { createLogger } from '../log.ts';
import { createHs256Signer, createVerifier } from '../auth/token.ts';
import { turnRestPassword } from '../auth/turnRest.ts';
import { MemorySessionStore } from '../session/memoryStore.ts';
import { storeUnavailable } from '../errors.ts';
import type { SessionStore } from '../session/store.ts';
import type { NodeInfo } from '../cluster/nodeInfo.ts';
import type { ClusterView } from '../cluster/view.ts';

const SECRET = 'jwt-secret-for-tests';
const AUTH_SECRET = 'turn-secret';
const signer = createHs256Signer(SECRET);

const node = (id: string, over: Partial<NodeInfo> = {}): NodeInfo => ({
  id, region: 'default', roles: ['stun', 'turn', 'signal', 'api'], host: '127.0.0.1', port: 3478,
  load: { allocations: 0, bps: 0 }, capacity: { allocations: 0, bps: 0 }, draining: false,
  heartbeatAt: Date.now(), heartbeatMs: 5000, ...over,
});

interface Harness {
  app: FastifyInstance;
  store: MemorySessionStore;
  nodes: NodeInfo[];
  online: Map<string, boolean>;
}

async function harness(storeOverride?: SessionStore): Promise<Harness> {
  const store = new MemorySessionStore();
  const nodes: NodeInfo[] = [
    node('eu-1', { region: 'eu', host: '127.0.0.11', tlsPort: 5349 }),
    node('eu-2', { region: 'eu', host: '127.0.0.12' }),
    node('us-1', { region: 'us', host: '127.0.0.21' }),
  ];
  const online = new Map<string, boolean>();
  const cluster: ClusterView = { nodes: () => nodes, regionOf: () => 'eu' };
  const app = createHttpServer({ logger: createLogger('silent'), readiness: [], metrics: async () => ({ contentType: 'text/plain', body: '' }) });
  await app.register(sessionRoutes, {
    store: storeOverride ?? store, verifier: await createVerifier({ secret: SECRET }), cluster,
    authSecret: AUTH_SECRET, sessionTtlSec: 3600, isDeviceOnline: (id) => online.get(id),
  });
  await app.ready();
  return { app, store, nodes, online };
}

const appToken = (devices: string[] = ['cam-1'], sub = 'app-1'): Promise<string> => signer.sign({ sub, role: 'app', devices });
const deviceToken = (sub = 'cam-1'): Promise<string> => signer.sign({ sub, role: 'device' });
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

async function create(h: Harness, token: string, body: Record<string, unknown> = { deviceId: 'cam-1' }) {
  return h.app.inject({ method: 'POST', url: '/v1/sessions', headers: bearer(token), payload: body });
}

describe('session API', () => {
  let h: Harness;
  before(async () => { h = await harness(); });
  after(async () => { await h.app.close(); });

  test('POST /v1/sessions opens a session with ICE servers for the caller', async () => {
    const res = await create(h, await appToken());
    assert.equal(res.statusCode, 201);
    const s = res.json();
    assert.match(s.sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(s.status, 'connecting');
    assert.equal(s.deviceId, 'cam-1');
    assert.equal(s.appId, 'app-1');
    assert.equal(s.region, 'eu');
    assert.equal(s.ttl, 3600);
    assert.ok(['eu-1', 'eu-2'].includes(s.turnNode), 'TURN node from the caller\'s region');
    const stun = s.iceServers.filter((i: { urls: string[] }) => i.urls[0]?.startsWith('stun:'));
    assert.equal(stun.length, 2, 'nearest STUN and another region\'s as fallback');
    assert.match(stun[0].urls[0], /^stun:127\.0\.0\.1[12]:3478$/);
    assert.equal(stun[1].urls[0], 'stun:127.0.0.21:3478');
    assert.equal(s.stunServer, stun[0].urls[0]);
    const turn = s.iceServers.at(-1);
    const host = s.turnNode === 'eu-1' ? '127.0.0.11' : '127.0.0.12';
    assert.deepEqual(turn.urls.slice(0, 2), [`turn:${host}:3478?transport=udp`, `turn:${host}:3478?transport=tcp`]);
    if (s.turnNode === 'eu-1') assert.equal(turn.urls[2], 'turns:127.0.0.11:5349?transport=tcp');
    const [expiry, session, ...rest] = turn.username.split(':');
    assert.deepEqual([session, rest], [s.sessionId, []], '"<expiry>:<sessionId>", the public format');
    assert.ok(Number(expiry) >= Math.floor(Date.now() / 1000) + 3590);
    assert.equal(turn.credential, turnRestPassword(AUTH_SECRET, turn.username));
  });

  test('the device reads the same session and the same TURN node', async () => {
    const s = (await create(h, await appToken())).json();
    const fromDevice = await h.app.inject({ method: 'GET', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await deviceToken()) });
    assert.equal(fromDevice.statusCode, 200);
    assert.equal(fromDevice.json().turnNode, s.turnNode);
    assert.deepEqual(fromDevice.json().iceServers.at(-1).urls, s.iceServers.at(-1).urls);
  });

  test('DELETE closes, the session stays readable, and DELETE again is fine', async () => {
    const s = (await create(h, await appToken())).json();
    const del = await h.app.inject({ method: 'DELETE', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await deviceToken()) });
    assert.equal(del.statusCode, 204);
    const got = (await h.app.inject({ method: 'GET', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await appToken()) })).json();
    assert.equal(got.status, 'closed');
    assert.equal(got.closeReason, 'deleted');
    assert.ok(got.iceServers.every((i: { username?: string }) => i.username === undefined), 'no TURN credentials for a closed session');
    const again = await h.app.inject({ method: 'DELETE', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await appToken()) });
    assert.equal(again.statusCode, 204);
  });

  test('GET /v1/sessions/:id/trace lists state changes in order', async () => {
    const s = (await create(h, await appToken())).json();
    await h.store.appendTrace(s.sessionId, { at: Date.now(), kind: 'signal', what: 'offer' });
    await h.app.inject({ method: 'DELETE', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await appToken()) });
    const res = await h.app.inject({ method: 'GET', url: `/v1/sessions/${s.sessionId}/trace`, headers: bearer(await deviceToken()) });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json().events.map((e: { what: string }) => e.what), ['new→connecting', 'offer', 'connecting→closed']);
    assert.deepEqual(res.json().events[2].detail, { reason: 'deleted' });
  });

  test('GET /v1/ice-servers gives STUN and TURN with REST credentials for the caller', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/ice-servers', headers: bearer(await deviceToken('cam-9')) });
    assert.equal(res.statusCode, 200);
    const { iceServers, expiresAt } = res.json();
    assert.ok(expiresAt > Date.now() / 1000);
    assert.ok(iceServers[0].urls[0].startsWith('stun:'));
    const turn = iceServers.at(-1);
    assert.equal(turn.username, `${expiresAt}::cam-9`, 'no session field: "<expiry>::<sub>"');
    assert.equal(turn.credential, turnRestPassword(AUTH_SECRET, turn.username));
  });

  test('a client may bring its own session id; reusing it is SESSION_EXISTS', async () => {
    const token = await appToken();
    const first = await create(h, token, { deviceId: 'cam-1', sessionId: 'my-session-1' });
    assert.equal(first.statusCode, 201);
    assert.equal(first.json().sessionId, 'my-session-1');
    const again = await create(h, token, { deviceId: 'cam-1', sessionId: 'my-session-1' });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'SESSION_EXISTS');
  });
});

describe('session API errors and authorization', () => {
  let h: Harness;
  before(async () => { h = await harness(); });
  after(async () => { await h.app.close(); });

  const code = (res: { statusCode: number; json(): { error: { code: string } } }): [number, string] => [res.statusCode, res.json().error.code];

  test('no token is TOKEN_MISSING, a bad one TOKEN_INVALID, an old one TOKEN_EXPIRED (401)', async () => {
    const noToken = await h.app.inject({ method: 'POST', url: '/v1/sessions', payload: { deviceId: 'cam-1' } });
    assert.deepEqual(code(noToken), [401, 'TOKEN_MISSING']);
    const basic = await h.app.inject({ method: 'GET', url: '/v1/ice-servers', headers: { authorization: 'Basic abc' } });
    assert.deepEqual(code(basic), [401, 'TOKEN_INVALID']);
    const forged = await createHs256Signer('another-secret').sign({ sub: 'app-1', role: 'app', devices: ['*'] });
    assert.deepEqual(code(await create(h, forged)), [401, 'TOKEN_INVALID']);
    const expired = await signer.sign({ sub: 'app-1', role: 'app', devices: ['*'], ttlSec: -10 });
    assert.deepEqual(code(await create(h, expired)), [401, 'TOKEN_EXPIRED']);
    for (const url of ['/v1/sessions/x', '/v1/sessions/x/trace', '/v1/ice-servers']) {
      assert.deepEqual(code(await h.app.inject({ method: 'GET', url })), [401, 'TOKEN_MISSING'], url);
    }
    assert.deepEqual(code(await h.app.inject({ method: 'DELETE', url: '/v1/sessions/x' })), [401, 'TOKEN_MISSING']);
  });

  test('bad input is BAD_REQUEST (400)', async () => {
    const token = await appToken(['*']);
    assert.deepEqual(code(await create(h, token, {})), [400, 'BAD_REQUEST']);
    assert.deepEqual(code(await create(h, token, { deviceId: 'has space' })), [400, 'BAD_REQUEST']);
    assert.deepEqual(code(await create(h, token, { deviceId: 'cam-1', sessionId: 'bad}id' })), [400, 'BAD_REQUEST']);
    const badJson = await h.app.inject({ method: 'POST', url: '/v1/sessions', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: '{nope' });
    assert.equal(badJson.statusCode, 400);
    assert.equal(badJson.json().error.code, 'BAD_REQUEST');
    const badId = await h.app.inject({ method: 'GET', url: '/v1/sessions/%7Bx%7D', headers: bearer(token) });
    assert.deepEqual(code(badId), [400, 'BAD_REQUEST']);
  });

  test('only app tokens open sessions, and only to devices they allow (FORBIDDEN 403)', async () => {
    assert.deepEqual(code(await create(h, await deviceToken())), [403, 'FORBIDDEN']);
    assert.deepEqual(code(await create(h, await appToken(['cam-2']))), [403, 'FORBIDDEN']);
    assert.deepEqual(code(await create(h, await appToken([]))), [403, 'FORBIDDEN']);
    assert.equal((await create(h, await appToken(['*']))).statusCode, 201, '* allows any device');
  });

  test('only the session\'s app or device reads, closes or traces it (FORBIDDEN 403)', async () => {
    const s = (await create(h, await appToken())).json();
    const strangers = [await appToken(['*'], 'app-2'), await deviceToken('cam-2'), await deviceToken('app-1')];
    for (const t of strangers) {
      for (const [method, url] of [['GET', `/v1/sessions/${s.sessionId}`], ['GET', `/v1/sessions/${s.sessionId}/trace`], ['DELETE', `/v1/sessions/${s.sessionId}`]] as const) {
        assert.deepEqual(code(await h.app.inject({ method, url, headers: bearer(t) })), [403, 'FORBIDDEN'], `${method} ${url}`);
      }
    }
    assert.equal((await h.store.get(s.sessionId))?.status, 'connecting', 'a stranger\'s DELETE changed nothing');
  });

  test('an unknown session is SESSION_NOT_FOUND (404) on every route', async () => {
    const t = await appToken();
    for (const [method, url] of [['GET', '/v1/sessions/nope'], ['GET', '/v1/sessions/nope/trace'], ['DELETE', '/v1/sessions/nope']] as const) {
      assert.deepEqual(code(await h.app.inject({ method, url, headers: bearer(t) })), [404, 'SESSION_NOT_FOUND'], `${method} ${url}`);
    }
  });

  test('an offline device is DEVICE_OFFLINE (409); unknown presence is allowed', async () => {
    h.online.set('cam-1', false);
    assert.deepEqual(code(await create(h, await appToken())), [409, 'DEVICE_OFFLINE']);
    h.online.set('cam-1', true);
    assert.equal((await create(h, await appToken())).statusCode, 201);
    h.online.delete('cam-1');
    assert.equal((await create(h, await appToken())).statusCode, 201);
  });

  test('no TURN node that can take it is NO_TURN_NODE (503): draining, at capacity or none', async () => {
    const saved = [...h.nodes];
    try {
      h.nodes.splice(0, h.nodes.length,
        node('d', { draining: true }),
        node('full', { load: { allocations: 10, bps: 0 }, capacity: { allocations: 10, bps: 0 } }),
        node('busy', { load: { allocations: 0, bps: 5e6 }, capacity: { allocations: 0, bps: 5e6 } }),
        node('stun-only', { roles: ['stun'] }));
      assert.deepEqual(code(await create(h, await appToken())), [503, 'NO_TURN_NODE']);
      h.nodes.push(node('ok', { region: 'us' }));
      const s = await create(h, await appToken());
      assert.equal(s.statusCode, 201, 'another region\'s node when the caller\'s has none');
      assert.equal(s.json().turnNode, 'ok');
    } finally {
      h.nodes.splice(0, h.nodes.length, ...saved);
    }
  });

  test('a session whose TURN node left moves to a live one, the same for both peers', async () => {
    const s = (await create(h, await appToken())).json();
    const saved = [...h.nodes];
    try {
      const idx = h.nodes.findIndex((n) => n.id === s.turnNode);
      h.nodes.splice(idx, 1);
      const a = (await h.app.inject({ method: 'GET', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await appToken()) })).json();
      const d = (await h.app.inject({ method: 'GET', url: `/v1/sessions/${s.sessionId}`, headers: bearer(await deviceToken()) })).json();
      assert.notEqual(a.turnNode, s.turnNode);
      assert.equal(d.turnNode, a.turnNode);
      assert.equal((await h.store.get(s.sessionId))?.turnNode, a.turnNode);
    } finally {
      h.nodes.splice(0, h.nodes.length, ...saved);
    }
  });

  test('a store outage is STORE_UNAVAILABLE (503)', async () => {
    const down: SessionStore = new Proxy(new MemorySessionStore(), {
      get(target, prop, receiver) {
        if (['create', 'get', 'update', 'close', 'trace'].includes(String(prop))) return async () => { throw storeUnavailable(); };
        return Reflect.get(target, prop, receiver);
      },
    });
    const d = await harness(down);
    try {
      assert.deepEqual(code(await create(d, await appToken())), [503, 'STORE_UNAVAILABLE']);
      assert.deepEqual(code(await d.app.inject({ method: 'GET', url: '/v1/sessions/x', headers: bearer(await appToken()) })), [503, 'STORE_UNAVAILABLE']);
    } finally {
      await d.app.close();
    }
  });
});
