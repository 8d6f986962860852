/**
 * MQTT signaling on the embedded broker (aedes), with real MQTT.js clients over TCP and
 * WebSocket, and Debian's mosquitto_pub / mosquitto_sub.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { registry } from '../../src/metrics/metrics.ts';
import {
  SDP_ANSWER, SDP_OFFER, connectPeer, granted, requestSession, run, sleep, startSignalingNode, token, waitUntil as waitFor, type Peer, type SignalingNode,
} from '../helpers/signaling.ts';

const haveMosquittoClients = spawnSync('mosquitto_pub', ['--help']).error === undefined;

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const base = name.replace(/_count$/, '');
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === base);
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>) {
    if (v.metricName !== undefined && v.metricName !== name) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

describe('signaling on the embedded broker', () => {
  let node: SignalingNode;
  const peers: Peer[] = [];
  const peer = async (...args: Parameters<typeof connectPeer>): Promise<Peer> => {
    const p = await connectPeer(...args);
    peers.push(p);
    return p;
  };

  before(async () => {
    node = await startSignalingNode();
  });
  after(async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    await node.stop();
  });

  test('a full offer, answer, candidates, keepalive and bye flow, with a session created over MQTT', async () => {
    const attempts = await metric('p2p_connection_attempts_total');
    const direct = await metric('p2p_connections_total', { path: 'direct' });
    const latencyCount = await metric('signaling_latency_seconds_count');
    const offerAnswerCount = await metric('signaling_offer_answer_seconds_count');

    const device = await peer(node.mqttUrl, 'device_flow', 'device');
    const app = await peer(node.mqttUrl, 'app_flow', 'app', { devices: ['device_flow'] });
    assert.equal(node.role.isDeviceOnline('device_flow'), true);

    const session = await requestSession(app, 'device_flow');
    const sessionId = session.sessionId as string;
    assert.equal(session.appId, 'app_flow');
    assert.equal(session.deviceId, 'device_flow');
    assert.equal(session.status, 'connecting');

    await app.send('device_flow', { type: 'offer', sessionId, payload: { type: 'offer', sdp: SDP_OFFER } });
    const offer = await device.inbox.next((m) => m.body.type === 'offer');
    assert.equal(offer.body.from, 'app_flow');
    assert.equal((offer.body.payload as { sdp: string }).sdp, SDP_OFFER);

    await device.send('app_flow', { type: 'answer', sessionId, payload: { type: 'answer', sdp: SDP_ANSWER } });
    await app.inbox.next((m) => m.body.type === 'answer');

    const cand = { candidate: 'candidate:1 1 UDP 2122260223 192.0.2.10 54321 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    await app.send('device_flow', { type: 'candidate', sessionId, payload: cand }, 0);
    await app.send('device_flow', { type: 'candidate', sessionId, payload: { candidate: '', sdpMid: '0', sdpMLineIndex: 0 } }, 0);
    await device.send('app_flow', { type: 'candidate', sessionId, payload: { ...cand, candidate: cand.candidate.replace('typ host', 'typ srflx raddr 0.0.0.0 rport 0') } }, 0);
    await device.inbox.next((m) => m.body.type === 'candidate' && (m.body.payload as { candidate: string }).candidate === '');
    await app.inbox.next((m) => m.body.type === 'candidate');

    const relayed = await metric('p2p_connections_total', { path: 'relay' });
    // The device's view of the path may be a pair the app later left: only the app's counts.
    await device.send('app_flow', { type: 'keepalive', sessionId, payload: { state: 'connected', path: 'relay' } }, 0);
    await app.inbox.next((m) => m.body.type === 'keepalive');
    await app.send('device_flow', { type: 'keepalive', sessionId, payload: { state: 'connected', path: 'direct', rttMs: 23, setupMs: 640, natType: 'full cone' } }, 0);
    await device.inbox.next((m) => m.body.type === 'keepalive');
    await waitFor(async () => (await node.store.get(sessionId))?.status === 'connected', 'status connected');

    await device.send('app_flow', { type: 'bye', sessionId, payload: { reason: 'done' } });
    await app.inbox.next((m) => m.body.type === 'bye');
    await waitFor(async () => (await node.store.get(sessionId))?.status === 'closed', 'status closed');
    const closed = await node.store.get(sessionId);
    assert.equal(closed?.closeReason, 'bye');

    const trace = await node.store.trace(sessionId);
    const signals = trace.filter((e) => e.kind === 'signal').map((e) => e.what);
    assert.deepEqual(signals, ['session', 'offer', 'answer', 'candidate', 'candidate', 'candidate', 'keepalive', 'keepalive', 'bye']);
    assert.ok(trace.some((e) => e.kind === 'state' && e.what === 'connecting→connected'));
    assert.ok(trace.some((e) => e.kind === 'state' && e.what === 'connected→closed'));
    assert.ok(!JSON.stringify(trace).includes('v=0'), 'the trace keeps no SDP');

    assert.equal(await metric('p2p_connection_attempts_total'), attempts + 1);
    assert.equal(await metric('p2p_connections_total', { path: 'direct' }), direct + 1);
    assert.equal(await metric('p2p_connections_total', { path: 'relay' }), relayed, 'the device\'s path is not counted');
    assert.ok(await metric('signaling_latency_seconds_count') >= latencyCount + 8);
    assert.equal(await metric('signaling_offer_answer_seconds_count'), offerAnswerCount + 1);
    assert.ok(await metric('nat_type_total', { type: 'full cone' }) >= 1);
  });

  test('MQTT over WebSocket at /mqtt carries the same protocol', async () => {
    const device = await peer(node.mqttUrl, 'device_ws', 'device');
    const app = await peer(node.wsUrl, 'app_ws', 'app', { devices: ['*'] });
    const { sessionId } = await requestSession(app, 'device_ws');
    await app.send('device_ws', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer');
    await device.send('app_ws', { type: 'answer', sessionId, payload: { sdp: SDP_ANSWER } });
    await app.inbox.next((m) => m.body.type === 'answer');
  });

  test('refuses a bad token, a username that is not the token\'s subject, and no password', async () => {
    const good = await token('app_login', 'app');
    await assert.rejects(connectPeer(node.mqttUrl, 'app_login', 'app', { token: `${good}x` }), /Bad username or password|bad user name or password/i);
    await assert.rejects(connectPeer(node.mqttUrl, 'app_other', 'app', { token: good }), /Not authorized/i);
    await assert.rejects(connectPeer(node.mqttUrl, 'app_login', 'app', { token: '' }), /Bad username or password|bad user name or password/i);
    const expired = await token('app_login', 'app', [], -10);
    await assert.rejects(connectPeer(node.mqttUrl, 'app_login', 'app', { token: expired }), /Bad username or password|bad user name or password/i);
  });

  test('each ACL violation is refused, the violator is told, nothing is forwarded', async () => {
    const device = await peer(node.mqttUrl, 'device_acl', 'device');
    const other = await peer(node.mqttUrl, 'device_acl_other', 'device');
    const app = await peer(node.mqttUrl, 'app_acl', 'app', { devices: ['device_acl'] });
    const victim = await peer(node.mqttUrl, 'app_victim', 'app', { devices: ['device_acl'] });
    const { sessionId } = await requestSession(app, 'device_acl');

    // Subscribing to another app's topic, or another device's: SUBACK 0x80, connection kept.
    assert.equal(await granted(app.client, 'p2p/signal/app/app_victim'), 128);
    assert.equal(await granted(app.client, 'p2p/signal/#'), 128);
    assert.equal(await granted(app.client, 'p2p/presence/device/device_acl_other'), 128);
    assert.equal(await granted(device.client, 'p2p/signal/device/device_acl_other'), 128);
    assert.equal(await granted(app.client, 'p2p/presence/device/device_acl'), 1, 'an app may watch the presence of a device its token names');

    // Publishing to a device the token does not name.
    await app.send('device_acl_other', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await app.inbox.error('FORBIDDEN');
    // A forged `from`.
    const forgedId = await app.send('device_acl', { type: 'offer', sessionId, from: 'app_victim', payload: { sdp: SDP_OFFER } });
    const forged = await app.inbox.error('FORGED_FROM');
    assert.equal(forged.body.replyTo, forgedId);
    assert.equal(forged.body.sessionId, sessionId);
    assert.equal(forged.body.from, 'server');
    // A device writing to another device's topic, or someone's presence.
    await device.client.publishAsync('p2p/signal/device/device_acl_other', JSON.stringify({ type: 'bye', sessionId, from: 'device_acl', to: 'device_acl_other', timestamp: Date.now() }), { qos: 1 });
    await device.inbox.error('FORBIDDEN');
    await device.client.publishAsync('p2p/presence/device/device_acl_other', 'offline', { qos: 1, retain: true });
    await sleep(100);
    assert.equal(node.role.isDeviceOnline('device_acl_other'), true);
    // Retained signaling messages.
    await app.client.publishAsync('p2p/signal/device/device_acl', JSON.stringify({ type: 'bye', sessionId, from: 'app_acl', to: 'device_acl', timestamp: Date.now() }), { qos: 1, retain: true });
    await app.inbox.error('FORBIDDEN');

    await sleep(150);
    assert.equal(device.inbox.ofType('offer').length + device.inbox.ofType('bye').length, 0, 'nothing reached the device');
    assert.equal(other.inbox.messages.length, 0);
    assert.equal(victim.inbox.messages.length, 0, 'the victim heard nothing');
    assert.ok(app.client.connected && device.client.connected, 'refusals keep the connection');

    // Still working afterwards.
    await app.send('device_acl', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer');
  });

  test('each malformed message is answered with its code and not forwarded', async () => {
    const device = await peer(node.mqttUrl, 'device_bad', 'device');
    const app = await peer(node.mqttUrl, 'app_bad', 'app', { devices: ['device_bad', 'device_nobody'] });
    const { sessionId } = await requestSession(app, 'device_bad');
    const pub = (body: string): Promise<unknown> => app.client.publishAsync('p2p/signal/device/device_bad', body, { qos: 1 });
    const base = { sessionId, from: 'app_bad', to: 'device_bad', timestamp: Date.now() };

    await pub('{"type": "offer", ');
    await app.inbox.error('BAD_JSON');
    await pub(JSON.stringify({ ...base, type: 'hello', msgId: 'm-unknown' }));
    const unknown = await app.inbox.error('UNKNOWN_TYPE');
    assert.equal(unknown.body.replyTo, 'm-unknown');
    await pub(JSON.stringify({ ...base, type: 'offer', msgId: 'm-nosdp', payload: {} }));
    await app.inbox.next((m) => m.body.replyTo === 'm-nosdp' && (m.body.payload as { code: string }).code === 'BAD_MESSAGE');
    await pub(JSON.stringify({ ...base, type: 'offer', msgId: 'm-nots', timestamp: 'now', payload: { sdp: SDP_OFFER } }));
    await app.inbox.next((m) => m.body.replyTo === 'm-nots' && (m.body.payload as { code: string }).code === 'BAD_MESSAGE');
    await pub(JSON.stringify({ ...base, type: 'candidate', msgId: 'm-cand', payload: { candidate: 42 } }));
    await app.inbox.next((m) => m.body.replyTo === 'm-cand' && (m.body.payload as { code: string }).code === 'BAD_MESSAGE');
    await pub(JSON.stringify({ ...base, type: 'offer', msgId: 'm-to', to: 'device_else', payload: { sdp: SDP_OFFER } }));
    await app.inbox.next((m) => m.body.replyTo === 'm-to' && (m.body.payload as { code: string }).code === 'BAD_MESSAGE');
    await pub(JSON.stringify({ ...base, type: 'offer', msgId: 'm-big', payload: { sdp: 'a'.repeat(70 * 1024) } }));
    const big = await app.inbox.error('MESSAGE_TOO_LARGE');
    assert.equal(big.body.replyTo, 'm-big');
    await pub(JSON.stringify({ ...base, type: 'offer', sessionId: randomUUID(), payload: { sdp: SDP_OFFER } }));
    await app.inbox.error('SESSION_NOT_FOUND');
    // A real session, but not between these two.
    const { sessionId: foreign } = await requestSession(await peer(node.mqttUrl, 'app_bad2', 'app', { devices: ['device_bad'] }), 'device_bad');
    await pub(JSON.stringify({ ...base, type: 'offer', sessionId: foreign, payload: { sdp: SDP_OFFER } }));
    await app.inbox.error('FORBIDDEN');

    await sleep(150);
    assert.equal(device.inbox.messages.length, 0, 'nothing malformed reached the device');
    assert.ok(app.client.connected);
    const errors = app.inbox.ofType('error');
    for (const e of errors) {
      assert.equal(e.topic, 'p2p/signal/app/app_bad', 'errors come on the sender\'s own topic');
      assert.equal(e.body.from, 'server');
    }
  });

  test('a device offline then online: DEVICE_OFFLINE at once, then the offer goes through', async () => {
    const app = await peer(node.mqttUrl, 'app_presence', 'app', { devices: ['device_late'] });
    assert.equal(node.role.isDeviceOnline('device_late'), false);
    await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: 'app_presence', msgId: 's1', payload: { deviceId: 'device_late' }, timestamp: Date.now() }), { qos: 1 });
    await app.inbox.error('DEVICE_OFFLINE');

    const device = await peer(node.mqttUrl, 'device_late', 'device');
    await waitFor(() => node.role.isDeviceOnline('device_late') === true, 'device online');
    const { sessionId } = await requestSession(app, 'device_late');
    await app.send('device_late', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer');

    // Gone without a word: the broker publishes its will; the next offer is refused at once.
    device.client.stream.destroy();
    await waitFor(() => node.role.isDeviceOnline('device_late') === false, 'device offline (will)');
    // "At once" is an order, not a time: the refusal of the offer comes before the answer to a
    // session request sent after it, so the server did not hold the offer for the device.
    app.inbox.clear();
    const offerId = await app.send('device_late', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    const laterId = randomUUID();
    await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: 'app_presence', msgId: laterId, payload: { deviceId: 'device_late' }, timestamp: Date.now() }), { qos: 1 });
    await app.inbox.next((m) => m.body.replyTo === laterId, 5000, 'the answer to the later session request');
    const answered = app.inbox.messages.map((m) => m.body.replyTo);
    assert.ok(answered.includes(offerId) && answered.indexOf(offerId) < answered.indexOf(laterId), JSON.stringify(app.inbox.messages.map((m) => m.body)));
    const refusal = app.inbox.messages.find((m) => m.body.replyTo === offerId);
    assert.equal((refusal?.body.payload as { code?: string } | undefined)?.code, 'DEVICE_OFFLINE');

    // A clean disconnect sends no will; the broker still notices the last connection left.
    const again = await peer(node.mqttUrl, 'device_late', 'device');
    await waitFor(() => node.role.isDeviceOnline('device_late') === true, 'device online again');
    await again.client.endAsync();
    await waitFor(() => node.role.isDeviceOnline('device_late') === false, 'device offline (clean disconnect)', 4000);
  });

  test('a device with a persistent session gets the QoS 1 messages sent while it was away', async () => {
    const clientId = `device_persist-${randomUUID().slice(0, 8)}`;
    const app = await peer(node.mqttUrl, 'app_persist', 'app', { devices: ['device_persist'] });
    const first = await peer(node.mqttUrl, 'device_persist', 'device', { clientId, clean: false });
    const { sessionId } = await requestSession(app, 'device_persist');
    await first.client.endAsync(true);
    await sleep(50);

    await app.send('device_persist', { type: 'candidate', sessionId, payload: { candidate: '', sdpMid: '0', sdpMLineIndex: 0 } }, 1);
    await app.send('device_persist', { type: 'bye', sessionId, payload: { reason: 'while away' } }, 1);
    await sleep(100);

    const back = await peer(node.mqttUrl, 'device_persist', 'device', { clientId, clean: false, subscribe: false });
    const bye = await back.inbox.next((m) => m.body.type === 'bye');
    assert.equal((bye.body.payload as { reason: string }).reason, 'while away');
    assert.equal(back.inbox.ofType('candidate').length, 1);
  });

  test('a retried message (same msgId) reaches the peer once', async () => {
    const dups = await metric('signaling_duplicates_total');
    const device = await peer(node.mqttUrl, 'device_dup', 'device');
    const app = await peer(node.mqttUrl, 'app_dup', 'app', { devices: ['device_dup'] });
    const { sessionId } = await requestSession(app, 'device_dup');
    const msgId = randomUUID();
    for (let i = 0; i < 3; i++) await app.send('device_dup', { type: 'offer', sessionId, msgId, payload: { sdp: SDP_OFFER } });
    await app.send('device_dup', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await waitFor(() => device.inbox.ofType('offer').length >= 2, 'two offers');
    await sleep(150);
    assert.equal(device.inbox.ofType('offer').length, 2);
    assert.equal(await metric('signaling_duplicates_total'), dups + 2);
    // A retried session request gets the same session, not a second one.
    const again = randomUUID();
    const ask = (): Promise<unknown> => app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: 'app_dup', msgId: again, payload: { deviceId: 'device_dup' }, timestamp: Date.now() }), { qos: 1 });
    await ask();
    await ask();
    await waitFor(() => app.inbox.messages.filter((m) => m.body.replyTo === again).length === 2, 'two answers');
    const ids = new Set(app.inbox.messages.filter((m) => m.body.replyTo === again).map((m) => m.body.sessionId));
    assert.equal(ids.size, 1);
  });

  test('two connections of one app (two tabs) work at once', async () => {
    const device = await peer(node.mqttUrl, 'device_tabs', 'device');
    const tab1 = await peer(node.mqttUrl, 'app_tabs', 'app', { devices: ['device_tabs'] });
    const tab2 = await peer(node.mqttUrl, 'app_tabs', 'app', { devices: ['device_tabs'] });
    const s1 = await requestSession(tab1, 'device_tabs');
    const s2 = await requestSession(tab2, 'device_tabs');
    await tab1.send('device_tabs', { type: 'offer', sessionId: s1.sessionId, payload: { sdp: SDP_OFFER } });
    await tab2.send('device_tabs', { type: 'offer', sessionId: s2.sessionId, payload: { sdp: SDP_OFFER } });
    await waitFor(() => device.inbox.ofType('offer').length === 2, 'both offers');
    assert.ok(tab1.client.connected && tab2.client.connected);
  });

  test('mosquitto_pub and mosquitto_sub speak the protocol with the embedded broker', { skip: haveMosquittoClients ? false : 'mosquitto-clients not installed' }, async () => {
    const port = new URL(node.mqttUrl).port;
    const app = await peer(node.mqttUrl, 'app_cli', 'app', { devices: ['device_cli'] });
    const devTok = await token('device_cli', 'device');
    // Line-buffered (stdbuf) with -d, so its SUBACK line shows when the subscription is in place.
    const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', port, '-i', 'device_cli-sub', '-u', 'device_cli', '-P', devTok, '-q', '1', '-t', 'p2p/signal/device/device_cli', '-C', '1', '-W', '30', '-d']);
    let received = '';
    sub.stdout.on('data', (d: Buffer) => { received += d.toString(); });
    const subDone = new Promise<number | null>((resolve) => sub.once('exit', resolve));
    // Publish only once the subscription is in place: a fixed pause lost that race under load.
    await waitFor(() => received.includes('SUBACK'), 'mosquitto_sub subscribed');
    // The device's presence, written by mosquitto_pub as a camera would.
    const online = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'device_cli', '-P', devTok, '-q', '1', '-r', '-t', 'p2p/presence/device/device_cli', '-m', 'online']);
    assert.equal(online.status, 0, online.stderr);
    await waitFor(() => node.role.isDeviceOnline('device_cli') === true, 'device online');
    const { sessionId } = await requestSession(app, 'device_cli');

    const appTok = app.token;
    const offer = JSON.stringify({ type: 'offer', sessionId, from: 'app_cli', to: 'device_cli', msgId: 'cli-1', payload: { sdp: SDP_OFFER }, timestamp: Date.now() });
    const sent = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'app_cli', '-P', appTok, '-q', '1', '-t', 'p2p/signal/device/device_cli', '-m', offer]);
    assert.equal(sent.status, 0, sent.stderr);
    assert.equal(await subDone, 0, received);
    const line = received.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `the offer's JSON line in mosquitto_sub's output:\n${received}`);
    assert.equal((JSON.parse(line) as { msgId: string }).msgId, 'cli-1');

    // A malformed message from mosquitto_pub is answered on the app's topic.
    const bad = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'app_cli', '-P', appTok, '-q', '1', '-t', 'p2p/signal/device/device_cli', '-m', 'not json']);
    assert.equal(bad.status, 0);
    await app.inbox.error('BAD_JSON');
    // A wrong password is refused at CONNECT.
    const refused = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'app_cli', '-P', 'nope', '-t', 'p2p/signal/device/device_cli', '-m', 'x']);
    assert.notEqual(refused.status, 0);
  });
});

/** Runs a command without blocking this process (the broker under test lives here). */


