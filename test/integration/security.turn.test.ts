/**
 * TURN against the attacks of issue 10 (items 7, 9, 12, 13), driven the way the attacker did:
 * REST credentials past their expiry or of a closed session (also after a restart with Redis), a
 * client-chosen session id equal to another app's sub, one app's many sessions against the node,
 * floods of spoofable and of real authentication failures, and a thousand permissions on one
 * allocation. Each test checks the refusal code and that other clients still work.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { haveRedis, REDIS_MISSING, startRedis } from '../helpers/redis.ts';
import { TurnTestClient, TurnError, UdpPeer, startTurnServer, startTurnServers, type ClientOptions } from '../helpers/turnClient.ts';
import { mintToken } from '../../src/cli/token.ts';
import { mintTurnRestCredentials } from '../../src/auth/turnRest.ts';
import {
  Attr, MessageClass, MessageWriter, Method, longTermKey, messageType, newTransactionId, requestedTransportValue,
  type TransportAddress,
} from '../../src/stun/index.ts';
import { eventually } from '../helpers/wait.ts';

const SECRET = 'security-turn-secret';
/** Three servers start at once, on a machine that may be busy: give them time to be ready. */
const READY_MS = 60_000;
const JWT = 'security-turn-jwt';
const isTurnError = (...codes: number[]) => (e: unknown): boolean => e instanceof TurnError && codes.includes(e.code);
const noAnswer = (e: unknown): boolean => e instanceof Error && /no answer/.test(e.message);

interface IceServer { urls: string[]; username?: string; credential?: string }
interface SessionJson { sessionId: string; iceServers: IceServer[] }

const appToken = (sub: string): Promise<string> => mintToken(['--sub', sub, '--role', 'app', '--devices', '*', '--jwt-secret', JWT], {});

async function createSession(server: P2pdProcess, token: string, body: Record<string, string> = {}): Promise<SessionJson> {
  const res = await fetch(`${server.httpUrl}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: 'device_sec', ...body }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as SessionJson;
}

async function deleteSession(server: P2pdProcess, token: string, sessionId: string): Promise<void> {
  const res = await fetch(`${server.httpUrl}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 204);
}

const turnOf = (servers: IceServer[]): { username: string; password: string } => {
  const t = servers.find((s) => s.username !== undefined);
  assert.ok(t?.username && t.credential, 'TURN credentials in iceServers');
  return { username: t.username, password: t.credential };
};

async function iceServerCredentials(server: P2pdProcess, token: string): Promise<{ username: string; password: string }> {
  const res = await fetch(`${server.httpUrl}/v1/ice-servers`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return turnOf(((await res.json()) as { iceServers: IceServer[] }).iceServers);
}

/** The allocation on this client is gone (Refresh answered 437), whichever way it went. */
const allocationGone = (c: TurnTestClient) => async (): Promise<boolean> =>
  c.refresh(60).then(() => false, (e: unknown) => isTurnError(437)(e));

describe('TURN security bounds (issue 10)', () => {
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  const connect = async (server: P2pdProcess, o: Partial<ClientOptions> & { username: string; password: string }): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: server.port, ...o });
    clients.push(c);
    return c;
  };
  /** Wrong passwords from `ip`, each on a fresh socket, until no answer comes (blocked) or 40 tries. */
  const guessUntilBlocked = async (server: P2pdProcess, ip: string): Promise<{ failures: number; blocked: boolean }> => {
    let failures = 0;
    let blocked = false;
    for (let k = 0; k < 40 && !blocked; k++) {
      const guess = await connect(server, { username: 'u', password: `guess-${k}`, localAddress: ip });
      await guess.allocate().then(
        () => assert.fail('a wrong password allocated'),
        (e: unknown) => {
          if (isTurnError(401)(e)) failures++;
          else if (noAnswer(e)) blocked = true;
          else throw e;
        },
      );
    }
    return { failures, blocked };
  };
  const peer = async (): Promise<UdpPeer> => {
    const x = await UdpPeer.bind();
    peers.push(x);
    return x;
  };
  /** A relay round trip through `c` to a fresh loopback peer: the allocation still relays. */
  const relays = async (c: TurnTestClient): Promise<void> => {
    const x = await peer();
    await c.createPermission(x.address);
    c.sendIndication(x.address, Buffer.from('still relaying'));
    assert.equal((await x.next(3000))?.data.toString(), 'still relaying');
  };

  /** Two workers, the session API, small quotas: credentials, namespaces, quotas, shared limiter. */
  let api: P2pdProcess;
  /** One worker, static users, REST secret, a channel cap: caps and the limiter on one process. */
  let caps: P2pdProcess;
  /** Tiny caps with short lifetimes: expired permissions and channels make room. */
  let lapse: P2pdProcess;

  before(async () => {
    const common = ['--user', 'u:p', '--allow-peer', '127.0.0.0/8', '--auth-secret', SECRET];
    [api, caps, lapse] = await startTurnServers([
      { workers: 2, readyTimeoutMs: READY_MS, args: ['--roles', 'stun,turn,api', ...common, '--jwt-secret', JWT, '--user-quota', '1', '--principal-quota', '3'] },
      { readyTimeoutMs: READY_MS, args: ['--roles', 'stun,turn', ...common, '--max-permissions', '128', '--max-channels', '8'] },
      { readyTimeoutMs: READY_MS, args: ['--roles', 'stun,turn', ...common, '--max-permissions', '4', '--max-channels', '2', '--permission-lifetime', '2', '--channel-lifetime', '2'] },
    ], servers) as [P2pdProcess, P2pdProcess, P2pdProcess];
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const x of peers) x.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  // --- item 7: credentials

  test('REST credentials: the allocation ends at their expiry (LIFETIME capped), then Refresh and CreatePermission are refused', async () => {
    const cred = mintTurnRestCredentials(SECRET, 'sess-expiring', Date.now() / 1000 + 4, 'app-exp');
    const c = await connect(caps, { username: cred.username, password: cred.credential });
    const x = await peer();
    const active = await metricValue(caps.httpUrl, 'turn_sessions_active');
    const { lifetime } = await c.allocate({ lifetime: 600 });
    assert.ok(lifetime <= 4, `LIFETIME ${lifetime} is capped at the credentials' expiry`);
    assert.ok((await c.refresh(600)) <= 4, 'a Refresh does not extend past the expiry either');
    await c.createPermission(x.address);
    await sleep(Math.max(0, cred.expiresAt * 1000 - Date.now()) + 1100);
    await assert.rejects(c.refresh(600), isTurnError(401, 437), 'Refresh after expiry');
    await assert.rejects(c.createPermission(x.address), isTurnError(401, 437), 'CreatePermission after expiry');
    // (Once swept, a request on that 5-tuple still gets 401: the expired username fails first.)
    await eventually('the allocation swept at its expiry', async () => (await metricValue(caps.httpUrl, 'turn_sessions_active')) <= active);
    c.sendIndication(x.address, Buffer.from('after expiry'));
    assert.equal(await x.next(300), undefined, 'nothing relayed after expiry');
    // Others are unaffected.
    const fresh = mintTurnRestCredentials(SECRET, 'sess-fresh', Date.now() / 1000 + 600, 'app-exp');
    const d = await connect(caps, { username: fresh.username, password: fresh.credential });
    await d.allocate();
    await relays(d);
    await d.refresh(0);
  });

  test("credentials of a closed session are refused (401) on every worker, other sessions still allocate", async () => {
    const token = await appToken('app-closer');
    const s = await createSession(api, token);
    const cred = turnOf(s.iceServers);
    assert.match(cred.username, new RegExp(`^\\d+:${s.sessionId}$`), '"<expiry>:<sessionId>"');
    const first = await connect(api, cred);
    await first.allocate();
    const before = await metricValue(api.httpUrl, 'turn_limit_refusals_total{limit="session_closed"');
    await deleteSession(api, token, s.sessionId);
    await eventually('the closed session\'s allocation released', allocationGone(first));
    await first.refresh(0).catch(() => undefined);
    // Eight sockets: their 5-tuples spread over both workers.
    const again = await Promise.all(Array.from({ length: 8 }, () => connect(api, cred)));
    const results = await Promise.allSettled(again.map((c) => c.allocate()));
    for (const r of results) assert.ok(r.status === 'rejected' && isTurnError(401)(r.reason), String(r.status === 'rejected' ? r.reason : 'allocated'));
    assert.ok(await metricValue(api.httpUrl, 'turn_limit_refusals_total{limit="session_closed"') >= before + 8);
    const other = await connect(api, turnOf((await createSession(api, token)).iceServers));
    await other.allocate();
    await relays(other);
    await other.refresh(0);
  });

  test("a session id equal to another app's sub can neither release nor spend that app's allocations", async () => {
    const victim = await appToken('app-victim');
    const attacker = await appToken('app-attacker');
    // The victim's session-less credentials: "<expiry>::app-victim".
    const vcred = await iceServerCredentials(api, victim);
    assert.match(vcred.username, /^\d+::app-victim$/);
    const v = await Promise.all([0, 1].map(() => connect(api, vcred)));
    for (const c of v) await c.allocate();
    // The attacker opens a session whose client-chosen id is the victim's sub.
    const s = await createSession(api, attacker, { sessionId: 'app-victim' });
    const acred = turnOf(s.iceServers);
    // The same text as the victim's sub, in another field: the principal is the session's app.
    assert.match(acred.username, /^\d+:app-victim$/);
    const a = await connect(api, acred);
    await a.allocate(); // uses up s:app-victim's --user-quota of 1 and p:app-attacker's, none of p:app-victim's
    const third = await connect(api, vcred);
    await third.allocate();
    await deleteSession(api, attacker, 'app-victim');
    await eventually("the attacker's allocation released", allocationGone(a));
    for (const c of [...v, third]) assert.ok((await c.refresh(60)) > 0, "the victim's allocations survive the attacker's close");
    await relays(v[0]!);
    for (const c of [...v, third]) await c.refresh(0);
  });

  test('after a restart with Redis, a closed session\'s credentials still get 401 (the store is asked)', async (t) => {
    if (!haveRedis()) return t.skip(REDIS_MISSING);
    const redis = await startRedis();
    try {
      const args = ['--roles', 'stun,turn,api', '--auth-secret', SECRET, '--jwt-secret', JWT, '--redis-url', redis.url, '--allow-peer', '127.0.0.0/8'];
      const token = await appToken('app-restart');
      const one = await startTurnServer({ args, readyTimeoutMs: READY_MS });
      let cred: { username: string; password: string };
      let open: { username: string; password: string };
      try {
        const s = await createSession(one, token);
        cred = turnOf(s.iceServers);
        open = turnOf((await createSession(one, token)).iceServers);
        await deleteSession(one, token, s.sessionId);
      } finally {
        await one.stop();
      }
      // A new process on the same store: it never heard the close.
      const two = await startTurnServer({ args, readyTimeoutMs: READY_MS });
      try {
        await assert.rejects((await connect(two, cred)).allocate(), isTurnError(401));
        const c = await connect(two, open);
        await c.allocate();
        await relays(c);
        // Outside issuers' credentials name sessions the store never held: allowed.
        const outside = mintTurnRestCredentials(SECRET, 'coturn-style', Date.now() / 1000 + 600);
        await (await connect(two, { username: outside.username, password: outside.credential })).allocate();
      } finally {
        await two.stop();
      }
    } finally {
      await redis.stop();
    }
  });

  // --- item 12: quota per principal

  test('one app with many sessions stops at --principal-quota (486) on both workers; another app still allocates', async () => {
    const token = await appToken('app-greedy');
    const sessions = await Promise.all(Array.from({ length: 5 }, () => createSession(api, token)));
    const cs = await Promise.all(sessions.map((s) => connect(api, turnOf(s.iceServers))));
    const results = await Promise.allSettled(cs.map((c) => c.allocate()));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3, '--principal-quota 3');
    for (const r of results) if (r.status === 'rejected') assert.ok(isTurnError(486)(r.reason), String(r.reason));
    // Session-less credentials of the same app count for the same principal.
    await assert.rejects((await connect(api, await iceServerCredentials(api, token))).allocate(), isTurnError(486));
    const other = await connect(api, turnOf((await createSession(api, await appToken('app-modest'))).iceServers));
    await other.allocate();
    await relays(other);
    assert.ok(await metricValue(api.httpUrl, 'turn_limit_refusals_total{limit="principal_quota"') >= 3);
    for (const c of [...cs, other]) await c.refresh(0).catch(() => undefined);
  });

  // --- item 13: permissions and channels per allocation

  test('1,100 distinct peer permissions on one allocation: refused past --max-permissions with 508, memory bounded, relaying goes on', async (t) => {
    const c = await connect(caps, { username: 'u', password: 'p' });
    await c.allocate();
    const x = await peer();
    await c.createPermission(x.address); // 1 of 128
    const rssBefore = await metricValue(caps.httpUrl, 'process_resident_memory_bytes');
    let accepted = 0;
    let refused = 0;
    for (let r = 0; r < 110; r++) {
      // Ten public addresses per request (all or nothing), 1,100 in all.
      const batch: TransportAddress[] = Array.from({ length: 10 }, (_, k) => {
        const n = r * 10 + k;
        return { family: 4, address: `11.${(n >> 8) & 255}.${n & 255}.1`, port: 9 };
      });
      try {
        await c.createPermission(...batch);
        accepted += batch.length;
      } catch (err) {
        assert.ok(isTurnError(508)(err), String(err));
        refused += batch.length;
      }
    }
    assert.equal(accepted, 120, '127 more fit in 128; twelve whole batches of ten');
    assert.equal(refused, 980);
    await c.createPermission(x.address); // refreshing one held is not a new one
    const rssAfter = await metricValue(caps.httpUrl, 'process_resident_memory_bytes');
    t.diagnostic(`accepted ${accepted + 1} permissions, refused ${refused}; RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(rssAfter - rssBefore < 32 * 2 ** 20, `RSS grew ${Math.round((rssAfter - rssBefore) / 2 ** 20)} MiB`);
    assert.ok(await metricValue(caps.httpUrl, 'turn_limit_refusals_total{limit="permissions"') >= 98);
    c.sendIndication(x.address, Buffer.from('to a held permission'));
    assert.equal((await x.next(3000))?.data.toString(), 'to a held permission');
    // Channels: eight bind (loopback peers share the held permission), the ninth gets 508.
    const ys = await Promise.all(Array.from({ length: 9 }, () => peer()));
    for (let k = 0; k < 8; k++) await c.channelBind(0x4000 + k, ys[k]!.address);
    await assert.rejects(c.channelBind(0x4008, ys[8]!.address), isTurnError(508));
    await c.channelBind(0x4000, ys[0]!.address); // a refresh of a bound channel is fine
    c.sendChannelData(0x4007, Buffer.from('over channel 8'));
    assert.equal((await ys[7]!.next(3000))?.data.toString(), 'over channel 8');
    // Another allocation on the node is unaffected.
    const d = await connect(caps, { username: 'u', password: 'p' });
    await d.allocate();
    await relays(d);
    await c.refresh(0);
    await d.refresh(0);
  });

  test('expired permissions and channels make room under the caps', async () => {
    const c = await connect(lapse, { username: 'u', password: 'p' });
    await c.allocate();
    const four = [1, 2, 3, 4].map((n): TransportAddress => ({ family: 4, address: `11.9.9.${n}`, port: 9 }));
    await c.createPermission(...four);
    await assert.rejects(c.createPermission({ family: 4, address: '11.9.9.5', port: 9 }), isTurnError(508));
    const xs = await Promise.all([0, 1, 2].map(() => peer()));
    await assert.rejects(c.channelBind(0x4000, xs[0]!.address), isTurnError(508), 'its permission does not fit either');
    await eventually('the permissions lapsed (--permission-lifetime 2)', () =>
      c.createPermission({ family: 4, address: '11.9.9.5', port: 9 }).then(() => true, () => false));
    await c.channelBind(0x4000, xs[0]!.address);
    await c.channelBind(0x4001, xs[1]!.address);
    await assert.rejects(c.channelBind(0x4002, xs[2]!.address), isTurnError(508));
    await eventually('the channels lapsed (--channel-lifetime 2)', () => c.channelBind(0x4002, xs[2]!.address).then(() => true, () => false));
    await c.refresh(0);
  });

  // --- item 9: the auth failure limiter

  test('floods with MESSAGE-INTEGRITY but no valid NONCE (spoofable) do not block their source', async () => {
    const ip = '127.0.0.21';
    const flood = await connect(caps, { username: 'u', password: 'p', localAddress: ip });
    const key = longTermKey('u', 'p2pd', 'wrong');
    const before = await metricValue(caps.httpUrl, 'turn_auth_failures_total{reason="missing_attributes"')
      + await metricValue(caps.httpUrl, 'turn_auth_failures_total{reason="stale_nonce"');
    for (let k = 0; k < 400; k++) {
      const w = new MessageWriter().reset(messageType(Method.Allocate, MessageClass.Request), newTransactionId());
      w.addUint32(Attr.RequestedTransport, requestedTransportValue(17));
      w.addString(Attr.Username, 'u').addString(Attr.Realm, 'p2pd');
      if (k % 2 === 1) w.addString(Attr.Nonce, `obMatJos2gAAA${'x'.repeat(22)}`); // a nonce we never issued
      w.addMessageIntegrity(key);
      flood.sendRaw(w.toBuffer());
      if (k % 50 === 49) await sleep(5);
    }
    await eventually('the flood reached the server', async () =>
      (await metricValue(caps.httpUrl, 'turn_auth_failures_total{reason="missing_attributes"')
        + await metricValue(caps.httpUrl, 'turn_auth_failures_total{reason="stale_nonce"')) >= before + 400);
    const victim = await connect(caps, { username: 'u', password: 'p', localAddress: ip });
    await victim.allocate();
    await relays(victim);
    await victim.refresh(0);
  });

  test('a wrong-password flood with valid nonces blocks its source; that source still refreshes its allocation, others allocate', async () => {
    const ip = '127.0.0.22';
    const held = await connect(caps, { username: 'u', password: 'p', localAddress: ip });
    await held.allocate();
    const { failures, blocked } = await guessUntilBlocked(caps, ip);
    assert.ok(blocked, 'the source is blocked');
    assert.equal(failures, 30, 'after 30 counted failures');
    await assert.rejects((await connect(caps, { username: 'u', password: 'p', localAddress: ip })).allocate(), noAnswer, 'the right password from there waits too');
    assert.ok((await held.refresh(600)) > 0, 'Refresh of an existing allocation on that source works during the block');
    await relays(held);
    const elsewhere = await connect(caps, { username: 'u', password: 'p', localAddress: '127.0.0.23' });
    await elsewhere.allocate();
    await held.refresh(0);
    await elsewhere.refresh(0);
  });

  test('with --workers 2 the failure budget is the node\'s, not each worker\'s', async () => {
    const ip = '127.0.0.24';
    // Each guess on its own socket: the 5-tuples spread over both workers (SO_REUSEPORT), so
    // without a shared count each worker would see about 20 of 40 and never block.
    const { failures, blocked } = await guessUntilBlocked(api, ip);
    assert.ok(blocked, `blocked after ${failures} failures across workers`);
    // The count reaches the other worker over IPC, so on a loaded machine a few guesses answered
    // while it travels get through; counted per worker, it would take ~60 (30 on each).
    assert.ok(failures >= 30 && failures < 45, `${failures} failures counted node-wide (budget 30; per worker it would be ~60)`);
    const elsewhere = await connect(api, { username: 'u', password: 'p', localAddress: '127.0.0.25' });
    await elsewhere.allocate();
    await elsewhere.refresh(0);
  });
});
