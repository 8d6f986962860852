/**
 * MQTT signaling on a real Mosquitto (Debian's, set up with deploy/mosquitto): the broker's
 * dynamic-security ACL written by p2pd from each token, the signaling service on shared
 * subscriptions, MQTT.js and mosquitto_pub / mosquitto_sub clients, a broker restart, and two
 * signaling nodes splitting the work.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ClientRole } from '../../src/auth/token.ts';
import { MemorySessionStore } from '../../src/session/memoryStore.ts';
import { MOSQUITTO_MISSING, haveMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts';
import {
  SDP_ANSWER, SDP_OFFER, connectPeer, granted, requestSession, run, sleep, startSignalingNode, token, waitUntil, type Peer, type PeerOptions, type SignalingNode,
} from '../helpers/signaling.ts';

const skip = haveMosquitto() ? false : MOSQUITTO_MISSING;

/** The client's side of login behind Mosquitto: have p2pd write the token's rights, then connect. */
async function provision(node: SignalingNode, tok: string): Promise<void> {
  const r = await fetch(`${node.httpUrl}/v1/mqtt/credentials`, { method: 'POST', headers: { authorization: `Bearer ${tok}` } });
  assert.equal(r.status, 200, await r.text());
}


/** Mosquitto adds a hop: a longer default wait than the embedded broker's tests. */
const waitFor = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 4000): Promise<void> => waitUntil(check, what, timeoutMs);


describe('signaling on Mosquitto', { skip }, () => {
  let mq: Mosquitto;
  let node: SignalingNode;
  const peers: Peer[] = [];
  const peer = async (id: string, role: ClientRole, opts: PeerOptions = {}): Promise<Peer> => {
    const tok = opts.token ?? await token(id, role, opts.devices ?? []);
    await provision(node, tok);
    const p = await connectPeer(mq.url, id, role, { ...opts, token: tok });
    peers.push(p);
    return p;
  };

  before(async () => {
    mq = await startMosquitto({ dynsec: true });
    node = await startSignalingNode({ external: { serviceUrl: mq.serviceUrl, clientUrl: mq.url, dynsec: true } });
    await sleep(600); // presence settles
  });
  after(async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    await node?.stop();
    await mq?.stop();
  });

  test('the full offer, answer, candidates, keepalive, bye flow through Mosquitto', async () => {
    const device = await peer('device_m1', 'device');
    const app = await peer('app_m1', 'app', { devices: ['device_m1'] });
    await waitFor(() => node.role.isDeviceOnline('device_m1') === true, 'presence online');
    const session = await requestSession(app, 'device_m1', { withToken: true });
    const sessionId = session.sessionId as string;

    await app.send('device_m1', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer');
    await device.send('app_m1', { type: 'answer', sessionId, payload: { sdp: SDP_ANSWER } });
    await app.inbox.next((m) => m.body.type === 'answer');
    await app.send('device_m1', { type: 'candidate', sessionId, payload: { candidate: 'candidate:1 1 UDP 1 192.0.2.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 } }, 0);
    await device.send('app_m1', { type: 'candidate', sessionId, payload: { candidate: '', sdpMid: '0', sdpMLineIndex: 0 } }, 0);
    await device.inbox.next((m) => m.body.type === 'candidate');
    await app.inbox.next((m) => m.body.type === 'candidate');
    await app.send('device_m1', { type: 'keepalive', sessionId, payload: { state: 'connected', path: 'relay', rttMs: 40 } }, 0);
    await waitFor(async () => (await node.store.get(sessionId))?.status === 'connected', 'connected');
    await app.send('device_m1', { type: 'bye', sessionId });
    await device.inbox.next((m) => m.body.type === 'bye');
    await waitFor(async () => (await node.store.get(sessionId))?.status === 'closed', 'closed');
    const signals = (await node.store.trace(sessionId)).filter((e) => e.kind === 'signal').map((e) => e.what);
    assert.deepEqual(signals, ['session', 'offer', 'answer', 'candidate', 'candidate', 'keepalive', 'bye']);
  });

  test('Mosquitto refuses each ACL violation; a forged from is reported to its real sender', async () => {
    const device = await peer('device_m2', 'device');
    const stranger = await peer('device_m2x', 'device');
    const app = await peer('app_m2', 'app', { devices: ['device_m2'] });
    const victim = await peer('app_m2v', 'app', { devices: ['device_m2'] });
    await waitFor(() => node.role.isDeviceOnline('device_m2') === true, 'presence online');
    const { sessionId } = await requestSession(app, 'device_m2', { withToken: true });

    assert.equal(await granted(app.client, 'p2p/signal/app/app_m2v'), 128, "another app's topic");
    assert.equal(await granted(app.client, 'p2p/signal/#'), 128);
    assert.equal(await granted(device.client, 'p2p/signal/device/device_m2x'), 128, "another device's topic");
    assert.equal(await granted(app.client, 'p2p/presence/device/device_m2'), 1);

    // To a device the token does not name: Mosquitto drops it (MQTT 3.1.1 has no negative PUBACK).
    await app.send('device_m2x', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    // Someone else's presence.
    await device.client.publishAsync('p2p/presence/device/device_m2x', 'offline', { qos: 1, retain: true });
    // A forged `from`: Mosquitto cannot read payloads, so it delivers; the service sees the session
    // and tells the app that really sent it.
    await app.send('device_m2', { type: 'candidate', sessionId, from: 'app_m2v', payload: { candidate: '' } });
    await app.inbox.error('FORGED_FROM');
    await sleep(200);
    assert.equal(stranger.inbox.messages.length, 0, 'nothing reached the device the token does not name');
    assert.equal(node.role.isDeviceOnline('device_m2x'), true);
    assert.equal(victim.inbox.messages.length, 0);

    // A token that is not provisioned, a wrong token, and a username that is not the token's.
    const unprovisioned = await token('app_m2new', 'app');
    await assert.rejects(connectPeer(mq.url, 'app_m2new', 'app', { token: unprovisioned }), /Not authorized|Bad username or password/i);
    await assert.rejects(connectPeer(mq.url, 'app_m2', 'app', { token: `${app.token}x` }), /Not authorized|Bad username or password/i);
    await assert.rejects(connectPeer(mq.url, 'app_m2v', 'app', { token: app.token }), /Not authorized|Bad username or password/i);
    // A token that cannot be verified is not provisioned.
    const r = await fetch(`${node.httpUrl}/v1/mqtt/credentials`, { method: 'POST', headers: { authorization: 'Bearer nope' } });
    assert.equal(r.status, 401);
  });

  test('malformed messages are answered with their codes', async () => {
    await peer('device_m3', 'device');
    const app = await peer('app_m3', 'app', { devices: ['device_m3'] });
    await waitFor(() => node.role.isDeviceOnline('device_m3') === true, 'presence online');
    const { sessionId } = await requestSession(app, 'device_m3', { withToken: true });
    const pub = (body: string): Promise<unknown> => app.client.publishAsync('p2p/signal/device/device_m3', body, { qos: 1 });
    const base = { sessionId, from: 'app_m3', to: 'device_m3', timestamp: Date.now() };
    await pub('{"type":"offer","from":"app_m3","msgId":"broken", ');
    const bad = await app.inbox.error('BAD_JSON');
    assert.equal(bad.body.replyTo, 'broken');
    await pub(JSON.stringify({ ...base, type: 'hello' }));
    await app.inbox.error('UNKNOWN_TYPE');
    await pub(JSON.stringify({ ...base, type: 'answer', payload: { sdp: 7 } }));
    await app.inbox.error('BAD_MESSAGE');
    await pub(JSON.stringify({ ...base, type: 'offer', payload: { sdp: 'a'.repeat(66 * 1024) } }));
    await app.inbox.error('MESSAGE_TOO_LARGE');
    await pub(JSON.stringify({ ...base, type: 'offer', sessionId: randomUUID(), payload: { sdp: SDP_OFFER } }));
    await app.inbox.error('SESSION_NOT_FOUND');
    // A session request without a token: behind an external broker the service cannot tell who asks.
    await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: 'app_m3', msgId: 'nt', payload: { deviceId: 'device_m3' }, timestamp: Date.now() }), { qos: 1 });
    await app.inbox.next((m) => m.body.replyTo === 'nt' && (m.body.payload as { code: string }).code === 'BAD_MESSAGE');
    // …and with another app's token: FORGED_FROM.
    const other = await token('app_m3other', 'app', ['device_m3']);
    await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: 'app_m3', msgId: 'ft', payload: { deviceId: 'device_m3', token: other }, timestamp: Date.now() }), { qos: 1 });
    await app.inbox.next((m) => m.body.replyTo === 'ft' && (m.body.payload as { code: string }).code === 'FORGED_FROM');
  });

  test('a device offline then online', async () => {
    const app = await peer('app_m4', 'app', { devices: ['device_m4'] });
    await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: 'app_m4', msgId: 'off', payload: { deviceId: 'device_m4', token: app.token }, timestamp: Date.now() }), { qos: 1 });
    await app.inbox.error('DEVICE_OFFLINE');
    const device = await peer('device_m4', 'device');
    await waitFor(() => node.role.isDeviceOnline('device_m4') === true, 'presence online');
    const { sessionId } = await requestSession(app, 'device_m4', { withToken: true });
    device.client.stream.destroy(); // gone without a word: Mosquitto publishes the will
    await waitFor(() => node.role.isDeviceOnline('device_m4') === false, 'presence offline (will)');
    await app.send('device_m4', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await app.inbox.error('DEVICE_OFFLINE');
    const back = await peer('device_m4', 'device');
    await waitFor(() => node.role.isDeviceOnline('device_m4') === true, 'presence online again');
    await app.send('device_m4', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await back.inbox.next((m) => m.body.type === 'offer');
  });

  test('mosquitto_pub and mosquitto_sub through Mosquitto', async () => {
    const app = await peer('app_m5', 'app', { devices: ['device_m5'] });
    const devTok = await token('device_m5', 'device');
    await provision(node, devTok);
    const port = String(mq.port);
    const online = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'device_m5', '-P', devTok, '-q', '1', '-r', '-t', 'p2p/presence/device/device_m5', '-m', 'online']);
    assert.equal(online.status, 0, online.stderr);
    await waitFor(() => node.role.isDeviceOnline('device_m5') === true, 'presence online');
    const { sessionId } = await requestSession(app, 'device_m5', { withToken: true });
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-u', 'device_m5', '-P', devTok, '-q', '1', '-t', 'p2p/signal/device/device_m5', '-C', '1', '-W', '8']);
    await sleep(300);
    const offer = JSON.stringify({ type: 'offer', sessionId, from: 'app_m5', to: 'device_m5', msgId: 'cli-m5', payload: { sdp: SDP_OFFER }, timestamp: Date.now() });
    const sent = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'app_m5', '-P', app.token, '-q', '1', '-t', 'p2p/signal/device/device_m5', '-m', offer]);
    assert.equal(sent.status, 0, sent.stderr);
    const got = await sub;
    assert.equal(got.status, 0, got.stderr);
    assert.equal((JSON.parse(got.stdout) as { msgId: string }).msgId, 'cli-m5');
    const refusedSub = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-u', 'device_m5', '-P', devTok, '-t', 'p2p/signal/app/app_m5', '-C', '1', '-W', '2']);
    assert.match(refusedSub.stderr + refusedSub.stdout, /denied/, 'a device may not subscribe to an app topic');
  });
});

describe('a Mosquitto restart', { skip }, () => {
  let mq: Mosquitto;
  let node: SignalingNode;
  const clients: Peer[] = [];

  before(async () => {
    mq = await startMosquitto({ dynsec: true });
    node = await startSignalingNode({ external: { serviceUrl: mq.serviceUrl, clientUrl: mq.url, dynsec: true } });
    await sleep(600);
  });
  after(async () => {
    await Promise.allSettled(clients.map((p) => p.close()));
    await node?.stop();
    await mq?.stop();
  });

  test('a device reconnecting after a broker restart still receives its queued QoS 1 messages', async () => {
    const clientId = 'device_r1-camera';
    const devTok = await token('device_r1', 'device');
    const appTok = await token('app_r1', 'app', ['device_r1']);
    await provision(node, devTok);
    await provision(node, appTok);
    const device = await connectPeer(mq.url, 'device_r1', 'device', { token: devTok, clientId, clean: false });
    const app = await connectPeer(mq.url, 'app_r1', 'app', { token: appTok });
    clients.push(app);
    await waitFor(() => node.role.isDeviceOnline('device_r1') === true, 'presence online');
    const { sessionId } = await requestSession(app, 'device_r1', { withToken: true });

    await device.client.endAsync(true); // away (its persistent session stays)
    await app.send('device_r1', { type: 'candidate', sessionId, msgId: 'before-restart', payload: { candidate: '' } });
    await sleep(100);

    await mq.restart();
    // The service reconnects by itself (clean session: what is published before it is back goes to
    // the peers but is not tracked).
    const service = node.role.broker as { client?: { connected: boolean } };
    await waitFor(() => service.client?.connected === true, 'the service back on the broker', 5000);
    await sleep(200); // its resubscription
    const app2 = await connectPeer(mq.url, 'app_r1', 'app', { token: appTok });
    clients.push(app2);
    await app2.send('device_r1', { type: 'bye', sessionId, msgId: 'after-restart' });
    await sleep(100);

    const back = await connectPeer(mq.url, 'device_r1', 'device', { token: devTok, clientId, clean: false, subscribe: false });
    clients.push(back);
    await back.inbox.next((m) => m.body.msgId === 'before-restart', 4000, 'the message queued before the restart');
    await back.inbox.next((m) => m.body.msgId === 'after-restart', 4000, 'the message queued after the restart');
    // The signaling service reconnected by itself and still tracks the flow.
    await waitFor(async () => (await node.store.get(sessionId))?.status === 'closed', 'bye tracked after the restart');
  });
});

describe('two signaling nodes on one Mosquitto', { skip }, () => {
  let mq: Mosquitto;
  const nodes: SignalingNode[] = [];
  const clients: Peer[] = [];
  const store = new MemorySessionStore(); // one store for both, as Redis would be

  before(async () => {
    mq = await startMosquitto({ dynsec: true });
    for (let i = 0; i < 2; i++) nodes.push(await startSignalingNode({ external: { serviceUrl: mq.serviceUrl, clientUrl: mq.url, dynsec: true }, store }));
    await sleep(600);
  });
  after(async () => {
    await Promise.allSettled(clients.map((p) => p.close()));
    for (const n of nodes) await n.stop();
    await store.shutdown();
    await mq?.stop();
  });

  test('every message is handled exactly once', async () => {
    const [n1, n2] = nodes as [SignalingNode, SignalingNode];
    const pairs = 4;
    const perPair = 15;
    const sessions: Array<{ app: Peer; device: Peer; sessionId: string }> = [];
    for (let i = 0; i < pairs; i++) {
      const devTok = await token(`device_s${i}`, 'device');
      const appTok = await token(`app_s${i}`, 'app', [`device_s${i}`]);
      await provision(i % 2 ? n1 : n2, devTok);
      await provision(i % 2 ? n2 : n1, appTok);
      const device = await connectPeer(mq.url, `device_s${i}`, 'device', { token: devTok });
      const app = await connectPeer(mq.url, `app_s${i}`, 'app', { token: appTok });
      clients.push(device, app);
      await waitFor(() => n1.role.isDeviceOnline(`device_s${i}`) === true && n2.role.isDeviceOnline(`device_s${i}`) === true, 'both nodes see the device');
      const { sessionId } = await requestSession(app, `device_s${i}`, { withToken: true });
      sessions.push({ app, device, sessionId: sessionId as string });
    }
    await Promise.all(sessions.map(async ({ app, device, sessionId }) => {
      for (let k = 0; k < perPair; k++) {
        await app.send(device.id, { type: 'candidate', sessionId, payload: { candidate: `candidate:${k} 1 UDP 1 192.0.2.1 ${5000 + k} typ host` } }, 1);
      }
    }));
    await waitFor(async () => {
      const counts = await Promise.all(sessions.map(async (s) => (await store.trace(s.sessionId)).filter((e) => e.kind === 'signal' && e.what === 'candidate').length));
      return counts.every((c) => c >= perPair);
    }, 'all candidates tracked', 8000);
    await sleep(300);
    for (const s of sessions) {
      const trace = await store.trace(s.sessionId);
      assert.equal(trace.filter((e) => e.kind === 'signal' && e.what === 'candidate').length, perPair, 'each candidate tracked once');
      assert.equal(trace.filter((e) => e.kind === 'signal' && e.what === 'session').length, 1, 'each session request handled once');
      assert.equal(s.app.inbox.messages.filter((m) => m.body.type === 'session').length, 1, 'one answer per session request');
      assert.equal(s.device.inbox.ofType('candidate').length, perPair);
    }
    const total = pairs * perPair;
    assert.equal(n1.role.service.stats.forwarded + n2.role.service.stats.forwarded, total);
    assert.ok(n1.role.service.stats.forwarded > 0 && n2.role.service.stats.forwarded > 0, `both nodes worked (${n1.role.service.stats.forwarded} / ${n2.role.service.stats.forwarded})`);
  });
});
