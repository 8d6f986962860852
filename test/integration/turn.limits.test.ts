/**
 * The relay's limits and lifecycle: the per-allocation bandwidth bucket, expiry of allocations,
 * permissions and channels (sockets closed, ports back in the pool), quotas that hold across
 * workers, and the release of a session's allocations when the session API closes it.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { TurnTestClient, TurnError, UdpPeer, startTurnServers } from '../helpers/turnClient.ts';
import { mintToken } from '../../src/cli/token.ts';
import { turnRestPassword } from '../../src/auth/turnRest.ts';
import { eventually } from '../helpers/wait.ts';

const isTurnError = (code: number) => (e: unknown): boolean => e instanceof TurnError && e.code === code;

/** Two consecutive UDP ports free on loopback right now. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 2 * (5000 + Math.floor(Math.random() * 5400)); // freePort's window (helpers/ports.ts), below the relay ranges
    const ok = await Promise.all([base, base + 1].map((port) => new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    })));
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no free port pair');
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('TURN limits and lifecycle', () => {
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  const connect = async (server: P2pdProcess, username = 'u', password = 'p'): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: server.port, username, password });
    clients.push(c);
    return c;
  };
  const peer = async (): Promise<UdpPeer> => {
    const x = await UdpPeer.bind();
    peers.push(x);
    return x;
  };
  let bw: P2pdProcess;
  let life: P2pdProcess;
  let quota: P2pdProcess;
  let relayBase: number;
  const JWT = 'limits-jwt-secret';

  before(async () => {
    relayBase = await freePortPair();
    const common = ['--user', 'u:p', '--user', 'v:p', '--allow-peer', '127.0.0.0/8'];
    [bw, life, quota] = await startTurnServers([
      { args: ['--roles', 'stun,turn', ...common, '--max-bps', '800000'] },
      { args: ['--roles', 'stun,turn', ...common, '--relay-ports', `${relayBase}-${relayBase + 1}`, '--permission-lifetime', '2', '--channel-lifetime', '2'] },
      {
        workers: 2,
        args: ['--roles', 'stun,turn,api', ...common, '--user-quota', '2', '--max-allocations', '5', '--auth-secret', 'limits-secret', '--jwt-secret', JWT],
      },
    ], servers) as [P2pdProcess, P2pdProcess, P2pdProcess];
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const x of peers) x.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('bandwidth: sending at twice --max-bps, the server relays no more than the bucket allows, the rest dropped and counted', async () => {
    // Measured on the server (its relayed-byte counter), not by the peer's arrival times: under
    // load the sender and the receiver are the ones that lag, and the bucket is what we assert.
    const rateBytesPerMs = 800_000 / 8 / 1000;
    const burstBytes = (800_000 / 8) * 0.2; // src/turn/bandwidth.ts BURST_SEC
    const relayedBefore = await metricValue(bw.httpUrl, 'turn_relay_bytes_total{direction="client_to_peer"');
    const droppedBefore = await metricValue(bw.httpUrl, 'turn_dropped_packets_total{reason="bandwidth"');
    const c = await connect(bw);
    const x = await peer();
    const start = performance.now(); // before the allocation: its bucket starts full after this
    await c.allocate();
    await c.channelBind(0x4000, x.address);
    // 1000-byte payloads, 2 every 10 ms: 200 kB/s = 1.6 Mbit/s, twice the 800 kbit/s limit.
    const payload = Buffer.alloc(1000, 7);
    const sendStart = performance.now();
    const durationMs = 4000;
    let sent = 0;
    while (performance.now() - sendStart < durationMs) {
      const due = Math.floor((performance.now() - sendStart) / 10) * 2 + 2;
      while (sent < due) {
        c.sendChannelData(0x4000, payload);
        sent++;
      }
      await sleep(5);
    }
    const sendMs = performance.now() - sendStart;
    // Relayed bytes stop growing once the server has read what we sent (bounded wait).
    let relayed = -1;
    for (let i = 0; i < 100; i++) {
      const now = await metricValue(bw.httpUrl, 'turn_relay_bytes_total{direction="client_to_peer"') - relayedBefore;
      if (now === relayed) break;
      relayed = now;
      await sleep(100);
    }
    const elapsedMs = performance.now() - start;
    const offered = sent * payload.length;
    const allowed = burstBytes + rateBytesPerMs * elapsedMs;
    const seen = `relayed ${relayed} B in ${Math.round(elapsedMs)} ms (bucket allows ${Math.round(allowed)}), offered ${offered} B in ${Math.round(sendMs)} ms`;
    assert.ok(relayed <= allowed, seen);
    // The lower side holds only for what the sender really offered, and leniently: a starved
    // server loses the refill of the time it did not run (the bucket holds 0.2 s).
    assert.ok(relayed >= 0.5 * Math.min(offered, rateBytesPerMs * sendMs), seen);
    if (offered >= 1.5 * allowed) assert.ok(await metricValue(bw.httpUrl, 'turn_dropped_packets_total{reason="bandwidth"') > droppedBefore, seen);
  });

  test('expiry: after its lifetime the relay port is closed and goes back to the pool', async () => {
    const active = await metricValue(life.httpUrl, 'turn_sessions_active');
    const a = await connect(life);
    const b = await connect(life);
    const ra = (await a.allocate({ lifetime: 2 })).relayed[0]!.port;
    const rb = (await b.allocate({ lifetime: 2 })).relayed[0]!.port;
    assert.deepEqual([ra, rb].sort(), [relayBase, relayBase + 1]);
    assert.equal(await portIsFree(ra), false, 'the relay socket is bound');
    await assert.rejects((await connect(life)).allocate(), isTurnError(508), 'the pool of two ports is empty');
    // Lifetime 2 s: wait for the server to expire both (bounded), not a fixed time.
    await eventually('both allocations expired', async () => await metricValue(life.httpUrl, 'turn_sessions_active') === active, 20_000);
    await assert.rejects(a.refresh(60), isTurnError(437));
    assert.equal(await portIsFree(ra), true, 'the relay socket was closed');
    assert.equal(await portIsFree(rb), true);
    const again = await (await connect(life)).allocate();
    assert.ok([relayBase, relayBase + 1].includes(again.relayed[0]!.port), 'ports are reused');
  });

  test('expiry: permissions and channels lapse after their lifetimes', async () => {
    const c = await connect(life);
    const x = await peer();
    const y = await peer();
    const relayed = (await c.allocate()).relayed[0]!;
    await c.channelBind(0x4000, x.address);
    await c.createPermission(y.address);
    c.sendChannelData(0x4000, Buffer.from('before'));
    assert.equal((await x.next())?.data.toString(), 'before');
    // Lifetimes 2 s: probe until the server drops for lack of both (bounded), not a fixed time.
    const noChannel = await metricValue(life.httpUrl, 'turn_dropped_packets_total{reason="no_channel"');
    const noPermission = await metricValue(life.httpUrl, 'turn_dropped_packets_total{reason="no_permission"');
    await eventually('channel and permission lapsed', async () => {
      c.sendChannelData(0x4000, Buffer.from('probe'));
      c.sendIndication(y.address, Buffer.from('probe'));
      await sleep(50);
      return await metricValue(life.httpUrl, 'turn_dropped_packets_total{reason="no_channel"') > noChannel
        && await metricValue(life.httpUrl, 'turn_dropped_packets_total{reason="no_permission"') > noPermission;
    }, 20_000);
    x.received.length = 0; // probes relayed before the lapse
    y.received.length = 0;
    c.sendChannelData(0x4000, Buffer.from('after: no channel'));
    c.sendIndication(y.address, Buffer.from('after: no permission'));
    y.socket.send('from the peer: no permission', relayed.port, '127.0.0.1');
    assert.equal(await x.next(500), undefined);
    assert.equal(await y.next(200), undefined);
    assert.equal(await c.nextData(200), undefined);
    assert.ok(await metricValue(life.httpUrl, 'turn_dropped_packets_total{reason="no_channel"') > 0);
    assert.ok(await metricValue(life.httpUrl, 'turn_dropped_packets_total{reason="no_permission"') > 0);
    await c.refresh(0);
  });

  test('quotas hold across two workers: --user-quota gives 486, --max-allocations 508', async () => {
    // Eight sockets: their 5-tuples spread over both workers (SO_REUSEPORT hashing).
    const us = await Promise.all(Array.from({ length: 8 }, () => connect(quota, 'u', 'p')));
    const results = await Promise.allSettled(us.map((c) => c.allocate()));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
    for (const r of results) if (r.status === 'rejected') assert.ok(isTurnError(486)(r.reason), String(r.reason));
    const vs = await Promise.all(Array.from({ length: 2 }, () => connect(quota, 'v', 'p')));
    await Promise.all(vs.map((c) => c.allocate()));
    // A REST user has its own quota (per session), but the node is at 4 of 5: one more fits.
    const restUser = (sid: string): Promise<TurnTestClient> => {
      const name = `${Math.floor(Date.now() / 1000) + 600}:${sid}`;
      return connect(quota, name, turnRestPassword('limits-secret', name));
    };
    await (await restUser('s1')).allocate();
    await assert.rejects((await restUser('s2')).allocate(), isTurnError(508));
    // Freed quota comes back.
    const winner = us[results.findIndex((r) => r.status === 'fulfilled')]!;
    await winner.refresh(0);
    await (await restUser('s3')).allocate();
    for (const c of [...us, ...vs]) await c.refresh(0).catch(() => undefined);
  });

  test("closing a session through the API releases its TURN allocations (on whichever worker)", async () => {
    const token = await mintToken(['--sub', 'app_limits', '--role', 'app', '--devices', '*', '--jwt-secret', JWT], {});
    const res = await fetch(`${quota.httpUrl}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'device_limits' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const session = (await res.json()) as { sessionId: string; iceServers: { urls: string[]; username?: string; credential?: string }[] };
    const turn = session.iceServers.find((s) => s.username !== undefined)!;
    assert.match(turn.username!, new RegExp(`^\\d+:${session.sessionId}$`), '"<expiry>:<sessionId>", the public format');
    const cs = await Promise.all([0, 1].map(() => connect(quota, turn.username, turn.credential)));
    for (const c of cs) await c.allocate();
    const before = await metricValue(quota.httpUrl, 'turn_sessions_active');
    const del = await fetch(`${quota.httpUrl}/v1/sessions/${session.sessionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(del.status, 204);
    for (let i = 0; i < 40 && (await metricValue(quota.httpUrl, 'turn_sessions_active')) > before - 2; i++) await sleep(50);
    assert.equal(await metricValue(quota.httpUrl, 'turn_sessions_active'), before - 2);
    for (const c of cs) await assert.rejects(c.refresh(60), isTurnError(437));
  });
});
