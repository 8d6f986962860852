/**
 * Three p2pd nodes sharing one real redis-server: X runs in this process (so the test can drain
 * it and read its log), B and C are real `p2pd serve` processes. Sessions live in Redis, so any
 * node serves any session, both peers get the same TURN node, a draining node gets no new
 * sessions, a killed node loses nothing, and the sweepers close a stale session exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { startNode, type RunningNode } from '../../src/server/node.ts';
import { createHs256Signer } from '../../src/auth/token.ts';
import { RedisSessionStore } from '../../src/session/redisStore.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { eventually } from '../helpers/wait.ts';

const JWT = 'cluster-test-jwt-secret';
const TURN_SECRET = 'cluster-test-turn-secret';
const signer = createHs256Signer(JWT);
// One app opens well over a hundred sessions here to see where HRW places them: the per-app
// bounds (tested in security.http.test.ts) are lifted, they are not what this file is about.
const COMMON = ['--roles', 'stun,turn,api', '--jwt-secret', JWT, '--auth-secret', TURN_SECRET, '--heartbeat-interval', '0.5', '--sweep-interval', '2',
  '--max-sessions-per-app', '0', '--max-viewers', '0', '--rate-limit-token', '0'];

interface SessionJson {
  sessionId: string; status: string; turnNode: string; closeReason: string; deviceId: string; appId: string;
  iceServers: { urls: string[]; username?: string; credential?: string }[];
}

async function call(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: () => Promise<unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: () => res.json() as Promise<unknown> };
}

async function createSession(base: string, token: string): Promise<SessionJson> {
  const r = await call(base, 'POST', '/v1/sessions', token, { deviceId: 'cam-1' });
  assert.equal(r.status, 201, r.status === 201 ? '' : JSON.stringify(await r.json()));
  return (await r.json()) as SessionJson;
}

async function getSession(base: string, id: string, token: string): Promise<SessionJson> {
  const r = await call(base, 'GET', `/v1/sessions/${id}`, token);
  assert.equal(r.status, 200);
  return (await r.json()) as SessionJson;
}

async function sweptTotal(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^sessions_closed_total\{reason="swept"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

async function healthyTurnNodes(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^cluster_nodes_healthy\{role="turn"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('three nodes sharing one Redis', { timeout: 60_000 }, () => {
  let redis: RedisServer;
  let x: RunningNode;
  let b: P2pdProcess;
  let c: P2pdProcess | undefined;
  let store: RedisSessionStore;
  const xLog: Record<string, unknown>[] = [];
  let app: string;
  let device: string;

  before(async () => {
    redis = await startRedis();
    const redisArgs = ['--redis-url', redis.url];
    [b, c] = await Promise.all([
      startP2pd({ args: [...COMMON, ...redisArgs, '--node-id', 'node-b'] }),
      startP2pd({ args: [...COMMON, ...redisArgs, '--node-id', 'node-c'] }),
    ]);
    const argv = [...COMMON, ...redisArgs, '--node-id', 'node-x', '--workers', '1', '--listen', '127.0.0.1',
      '--port', String(await freePort()), '--http', '127.0.0.1:0', '--mqtt', `127.0.0.1:${await freePort()}`, '--log-level', 'debug'];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) xLog.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    x = await startNode(loadConfig(argv), pino({ level: 'debug' }, sink), { argv, env: {} });
    store = new RedisSessionStore({ urls: [redis.url] });
    await store.ready();
    app = await signer.sign({ sub: 'app-1', role: 'app', devices: ['cam-1'] });
    device = await signer.sign({ sub: 'cam-1', role: 'device' });
    // Every node has seen every other's heartbeat.
    for (const base of [x.httpUrl, b.httpUrl, c.httpUrl]) await eventually(`${base} sees three TURN nodes`, async () => await healthyTurnNodes(base) === 3);
  });

  after(async () => {
    await store?.shutdown();
    await Promise.all([x?.stop(), b?.stop(), c?.stop()]);
    await redis?.stop();
  });

  test('the sweepers close a stale session exactly once and its TURN allocations are released', async () => {
    const s = await createSession(b.httpUrl, app);
    const sweptBefore = (await Promise.all([x.httpUrl, b.httpUrl].map(sweptTotal))).reduce((p, q) => p + q, 0);
    // The device went quiet long ago: its last keepalive is in 1970.
    await store.update(s.sessionId, { updatedAt: 1, lastSeenAt: 1 });
    const deadline = Date.now() + 8000;
    const cUrl = (c as P2pdProcess).httpUrl;
    let got = await getSession(cUrl, s.sessionId, app);
    while (got.status !== 'closed' && Date.now() < deadline) {
      await sleep(100);
      got = await getSession(cUrl, s.sessionId, app);
    }
    assert.equal(got.status, 'closed');
    assert.equal(got.closeReason, 'swept');
    await sleep(2500); // every node has swept at least once more
    const trace = await store.trace(s.sessionId);
    assert.equal(trace.filter((e) => e.what.endsWith('→closed')).length, 1);
    const sweptAfter = (await Promise.all([x.httpUrl, b.httpUrl, (c as P2pdProcess).httpUrl].map(sweptTotal))).reduce((p, q) => p + q, 0);
    assert.equal(sweptAfter - sweptBefore, 1, 'one close counted across the three nodes');
    assert.ok(xLog.some((l) => l.msg === 'session closed: releasing its TURN allocations' && l.sessionId === s.sessionId),
      'node X heard the close and released the session\'s allocations');
  });

  test('a session created on B is read on X and C, both peers get the same TURN node, and C closes it', async () => {
    const s = await createSession(b.httpUrl, app);
    const byApp = await getSession(x.httpUrl, s.sessionId, app);
    const cUrl = (c as P2pdProcess).httpUrl;
    const byDevice = await getSession(cUrl, s.sessionId, device);
    assert.equal(byApp.turnNode, s.turnNode);
    assert.equal(byDevice.turnNode, s.turnNode);
    const turnOf = (v: SessionJson): string[] | undefined => v.iceServers.find((i) => i.username)?.urls;
    assert.deepEqual(turnOf(byApp), turnOf(s));
    assert.deepEqual(turnOf(byDevice), turnOf(s));
    assert.equal((await call(cUrl, 'DELETE', `/v1/sessions/${s.sessionId}`, device)).status, 204);
    const closed = await getSession(b.httpUrl, s.sessionId, app);
    assert.equal(closed.status, 'closed');
    assert.equal(closed.closeReason, 'deleted');
    await sleep(200);
    assert.ok(xLog.some((l) => l.msg === 'session closed: releasing its TURN allocations' && l.sessionId === s.sessionId));
  });

  test('a draining node gets no new sessions', async () => {
    const before = new Set<string>();
    for (let i = 0; i < 30; i++) before.add((await createSession(b.httpUrl, app)).turnNode);
    assert.deepEqual([...before].sort(), ['node-b', 'node-c', 'node-x'], 'sessions spread over the three nodes');
    x.drain();
    assert.equal((await fetch(`${x.httpUrl}/readyz`)).status, 503);
    // The other nodes learn of the drain at their next read of the registry (one heartbeat, on a
    // busy machine maybe a few): from then on, 15 sessions in a row from every node avoid X.
    const deadline = Date.now() + 10_000;
    for (const base of [b.httpUrl, (c as P2pdProcess).httpUrl, x.httpUrl]) {
      for (let clean = 0; clean < 15;) {
        const placed = (await createSession(base, app)).turnNode;
        if (placed !== 'node-x') clean++;
        else if (Date.now() < deadline) clean = 0;
        else assert.fail(`${base} still places sessions on the draining node 10 s after the drain`);
      }
    }
  });

  test('a node killed mid-session loses nothing: its sessions move, the same for both peers', async () => {
    let s: SessionJson | undefined;
    for (let i = 0; i < 40 && s?.turnNode !== 'node-c'; i++) s = await createSession((c as P2pdProcess).httpUrl, app);
    assert.equal(s?.turnNode, 'node-c');
    const id = (s as SessionJson).sessionId;
    const killed = c as P2pdProcess;
    c = undefined; // (stop() on a process already killed by a signal would wait for an exit that came)
    await killed.stop('SIGKILL');
    const right = await getSession(b.httpUrl, id, app);
    assert.equal(right.status, 'connecting');
    assert.equal(right.deviceId, 'cam-1');
    // Once C's last heartbeat is older than three intervals, its sessions move to B.
    await eventually('the session moved to node-b', async () => (await getSession(b.httpUrl, id, app)).turnNode === 'node-b', 15_000);
    const byApp = await getSession(b.httpUrl, id, app);
    const byDevice = await getSession(x.httpUrl, id, device);
    assert.equal(byApp.turnNode, 'node-b', 'the only live node not draining');
    assert.equal(byDevice.turnNode, 'node-b');
    assert.equal((await call(x.httpUrl, 'DELETE', `/v1/sessions/${id}`, app)).status, 204);
    assert.equal((await getSession(b.httpUrl, id, device)).status, 'closed');
  });
});
