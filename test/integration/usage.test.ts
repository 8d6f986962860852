/**
 * Usage accounting (docs/operations.md "Usage") as an operator sees it: a real `p2pd serve`
 * (with Redis and two TURN workers, and alone in memory) relays real bytes for a session's REST
 * credentials; `GET /v1/usage` with an operator token then answers the bytes and seconds per app
 * and per device, as JSON and CSV. An app token is refused (403 FORBIDDEN), a malformed range
 * too (400 BAD_REQUEST), and /metrics names neither the app nor the device.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { haveRedis, REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.ts';
import { TurnTestClient, UdpPeer, startTurnServer } from '../helpers/turnClient.ts';
import { mintToken } from '../../src/cli/token.ts';

const JWT = 'usage-jwt';
const SECRET = 'usage-turn-secret';
const token = (sub: string, role: string): Promise<string> =>
  mintToken(['--sub', sub, '--role', role, ...(role === 'app' ? ['--devices', '*'] : []), '--jwt-secret', JWT], {});

interface UsageRowJson { hour: string; kind: string; id: string; relayBytes: number; relaySeconds: number }
interface IceServer { urls: string[]; username?: string; credential?: string }

async function relayThroughSession(server: P2pdProcess, appId: string, deviceId: string): Promise<number> {
  const res = await fetch(`${server.httpUrl}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await token(appId, 'app')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const turn = ((await res.json()) as { iceServers: IceServer[] }).iceServers.find((s) => s.username !== undefined);
  assert.ok(turn?.username && turn.credential);
  const peer = await UdpPeer.bind();
  peer.echo = true;
  const c = await TurnTestClient.connect({ port: server.port, username: turn.username, password: turn.credential });
  try {
    await c.allocate({ lifetime: 600 });
    await c.createPermission(peer.address);
    const payload = Buffer.alloc(1000, 7);
    let echoed = 0;
    for (let i = 0; i < 20; i++) {
      c.sendIndication(peer.address, payload);
      // Each datagram goes out and its echo comes back (bounded wait; UDP on loopback).
      if (await c.nextData(5000)) echoed++;
    }
    assert.ok(echoed > 0, 'the peer\'s echoes came back through the relay');
    await c.refresh(0);
    // Out: 20 × 1000 to the peer; back: each echo that the relay took.
    return peer.received.length * 1000 + echoed * 1000;
  } finally {
    c.close();
    peer.close();
  }
}

async function usage(server: P2pdProcess, bearer: string, query = '', accept?: string): Promise<Response> {
  return fetch(`${server.httpUrl}/v1/usage${query}`, { headers: { authorization: `Bearer ${bearer}`, ...(accept ? { accept } : {}) } });
}

/** Reads /v1/usage until the app's row is there (the relay reports within seconds of a delete). */
async function waitForRows(server: P2pdProcess, operator: string, appId: string): Promise<UsageRowJson[]> {
  for (let i = 0; i < 60; i++) {
    const res = await usage(server, operator);
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { rows: UsageRowJson[]; truncated: boolean; from: string; to: string };
    if (body.rows.some((r) => r.id === appId)) return body.rows;
    await sleep(250);
  }
  assert.fail(`no usage row for ${appId}`);
}

async function checkUsage(server: P2pdProcess, appId: string, deviceId: string): Promise<void> {
  const relayed = await relayThroughSession(server, appId, deviceId);
  const operator = await token('ops', 'operator');
  const rows = await waitForRows(server, operator, appId);
  const app = rows.find((r) => r.kind === 'app' && r.id === appId);
  const dev = rows.find((r) => r.kind === 'device' && r.id === deviceId);
  assert.ok(app && dev, JSON.stringify(rows));
  // Summed over hours: a run across the top of an hour has two rows each.
  const sum = (kind: string, id: string): number => rows.filter((r) => r.kind === kind && r.id === id).reduce((n, r) => n + r.relayBytes, 0);
  assert.equal(sum('app', appId), relayed);
  assert.equal(sum('device', deviceId), relayed);
  assert.ok(app.relaySeconds >= 1 && dev.relaySeconds >= 1, JSON.stringify(rows));
  assert.match(app.hour, /^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z$/);

  for (const [query, accept] of [['', 'text/csv'], ['?format=csv', undefined]] as const) {
    const csv = await usage(server, operator, query, accept);
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines[0], 'hour,kind,id,relayBytes,relaySeconds');
    assert.ok(lines.includes(`${dev.hour},device,${deviceId},${dev.relayBytes},${dev.relaySeconds}`), lines.join('\n'));
  }

  const top = (await (await usage(server, operator, `?kind=device&top=1&from=${encodeURIComponent(dev.hour)}`)).json()) as { rows: UsageRowJson[] };
  assert.ok(top.rows.every((r) => r.kind === 'device'));

  const refused = await usage(server, await token(appId, 'app'));
  assert.equal(refused.status, 403);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
  for (const q of ['?from=yesterday', '?from=2026-12-02T05:00:00Z&to=2026-12-01T05:00:00Z', '?from=0&to=99999999', '?kind=camera', '?top=0']) {
    const bad = await usage(server, operator, q);
    assert.equal(bad.status, 400, q);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST', q);
  }
  assert.equal((await fetch(`${server.httpUrl}/v1/usage`)).status, 401);

  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
  assert.ok(!metrics.includes(appId) && !metrics.includes(deviceId), '/metrics names no app or device');
}

describe('usage accounting: GET /v1/usage', () => {
  const started: { stop(): Promise<unknown> }[] = [];
  after(async () => {
    for (const s of started.reverse()) await s.stop();
  });

  test('with Redis and two TURN workers: bytes and seconds per app and device, JSON and CSV, operator only', async (t) => {
    if (!haveRedis()) return t.skip(REDIS_MISSING);
    const redis: RedisServer = await startRedis();
    started.push(redis);
    const server = await startTurnServer({
      workers: 2,
      args: ['--roles', 'stun,turn,api', '--auth-secret', SECRET, '--jwt-secret', JWT, '--redis-url', redis.url, '--allow-peer', '127.0.0.0/8'],
    });
    started.push(server);
    await checkUsage(server, 'app-usage-redis', 'cam-usage-redis');
  });

  test('in memory with one process: the same answers', async () => {
    const server = await startTurnServer({
      args: ['--roles', 'stun,turn,api', '--auth-secret', SECRET, '--jwt-secret', JWT, '--allow-peer', '127.0.0.0/8'],
    });
    started.push(server);
    await checkUsage(server, 'app-usage-mem', 'cam-usage-mem');
  });
});
