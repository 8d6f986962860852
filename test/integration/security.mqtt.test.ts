/**
 * The embedded MQTT broker attacked the way issue 10 found it open: session-less messages,
 * client-id takeover, expired tokens on open connections, trace poisoning, and pre-login memory
 * (a CONNECT announcing 200 MiB, over TCP and over WebSocket in small frames; many sockets from
 * one source that never log in). Each asserts the refusal, that it is counted, and that the
 * server's memory and its other clients are unaffected.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { registry } from '../../src/metrics/metrics.ts';
import { SignalingClient, type SignalMessage } from '../../src/sdk/signaling.ts';
import { createNetNs, netnsSupported } from '../helpers/netns.ts';
import {
  SDP_ANSWER, SDP_OFFER, connectPeer, requestSession, startSignalingNode, token, waitUntil, type Peer, type SignalingNode,
} from '../helpers/signaling.ts';

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values as Array<{ value: number; labels: Record<string, string | number> }>) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

const MiB = 1024 * 1024;
const expiryOf = (tok: string): number => (JSON.parse(Buffer.from(tok.split('.')[1] as string, 'base64url').toString('utf8')) as { exp: number }).exp * 1000;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); }),
  ]);
}

/** Writes `chunk` again and again (with backpressure) until the socket closes or `maxBytes` went out. */
async function floodUntilClosed(write: (chunk: Buffer) => Promise<void>, closed: Promise<unknown>, chunk: Buffer, maxBytes: number): Promise<{ closed: boolean; sentBytes: number }> {
  let isClosed = false;
  void closed.then(() => { isClosed = true; });
  let sentBytes = 0;
  while (!isClosed && sentBytes < maxBytes) {
    try {
      await Promise.race([write(chunk), closed]);
    } catch {
      break;
    }
    sentBytes += chunk.length;
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  return { closed: isClosed, sentBytes };
}

function rawTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

const closeOf = (s: Socket): Promise<void> => new Promise((resolve) => {
  if (s.destroyed) resolve();
  else s.once('close', () => resolve());
});

describe('the embedded broker under attack', () => {
  let node: SignalingNode;
  let mqttPort: number;
  const peers: Peer[] = [];
  const peer = async (...args: Parameters<typeof connectPeer>): Promise<Peer> => {
    const p = await connectPeer(...args);
    peers.push(p);
    return p;
  };

  before(async () => {
    node = await startSignalingNode({ bindHost: '0.0.0.0' });
    mqttPort = node.role.mqttPort as number;
  });
  after(async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    await node.stop();
  });

  /** An app and a device that really talk: the proof that other clients are unaffected. */
  async function healthyPair(tag: string): Promise<void> {
    const device = await peer(node.mqttUrl, `device_ok_${tag}`, 'device');
    const app = await peer(node.mqttUrl, `app_ok_${tag}`, 'app', { devices: [device.id] });
    const { sessionId } = await requestSession(app, device.id);
    await app.send(device.id, { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer' && m.body.sessionId === sessionId, 5000, 'the healthy offer');
    await Promise.all([app.close(), device.close()]);
  }

  test('a session-less error from a device never reaches the app: SESSION_REQUIRED to the device, counted', async () => {
    const counted = await metric('signaling_errors_total', { code: 'SESSION_REQUIRED' });
    const app = await peer(node.mqttUrl, 'app_target', 'app', { devices: ['device_nowhere'] });
    const device = await peer(node.mqttUrl, 'device_spammer', 'device');
    await device.send(app.id, { type: 'error', sessionId: '', payload: { code: 'PAY_NOW', message: 'your camera is locked, pay to unlock' } });
    await device.send(app.id, { type: 'error', payload: { code: 'PAY_NOW', message: 'no sessionId at all' } });
    const refusals = (): number => device.inbox.ofType('error').filter((m) => (m.body.payload as { code?: string }).code === 'SESSION_REQUIRED').length;
    await waitUntil(() => refusals() === 2, 'two SESSION_REQUIRED refusals');
    // The gate has decided on both (the refusals came back); a probe through the service then reaches the app.
    await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: app.id, msgId: 'probe', payload: { deviceId: 'device_nowhere' }, timestamp: Date.now() }), { qos: 1 });
    await app.inbox.error('DEVICE_OFFLINE');
    assert.deepEqual(app.inbox.messages.filter((m) => m.body.from === device.id), [], 'the app heard nothing from the device');
    assert.equal(await metric('signaling_errors_total', { code: 'SESSION_REQUIRED' }), counted + 2);
    await healthyPair('sessionless');
  });

  test('a client id held by another username is refused with CONNACK 2 and the holder stays connected', async () => {
    const counted = await metric('mqtt_connections_refused_total', { reason: 'client_id_taken' });
    const clientId = `cam-${randomUUID().slice(0, 8)}`;
    const holder = await peer(node.mqttUrl, 'device_holder', 'device', { clientId });
    await assert.rejects(peer(node.mqttUrl, 'device_thief', 'device', { clientId }), (err: Error & { code?: number }) => err.code === 2);
    await assert.rejects(peer(node.mqttUrl, 'app_thief', 'app', { clientId, clean: false }), (err: Error & { code?: number }) => err.code === 2);
    assert.ok(holder.client.connected, 'the holder was not disconnected');
    const app = await peer(node.mqttUrl, 'app_of_holder', 'app', { devices: [holder.id] });
    const { sessionId } = await requestSession(app, holder.id);
    await app.send(holder.id, { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await holder.inbox.next((m) => m.body.type === 'offer', 5000, 'an offer to the holder');
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'client_id_taken' }), counted + 2);

    // A persistent session keeps its id for its username while it is away.
    const persistentId = `cam-p-${randomUUID().slice(0, 8)}`;
    const away = await peer(node.mqttUrl, 'device_persistent', 'device', { clientId: persistentId, clean: false });
    await away.client.endAsync();
    await assert.rejects(peer(node.mqttUrl, 'device_thief', 'device', { clientId: persistentId }), (err: Error & { code?: number }) => err.code === 2);
    const back = await peer(node.mqttUrl, 'device_persistent', 'device', { clientId: persistentId, clean: false });
    assert.ok(back.client.connected);
  });

  test('the same username reusing its client id takes the connection over, as MQTT says', async () => {
    const clientId = `tab-${randomUUID().slice(0, 8)}`;
    const first = await peer(node.mqttUrl, 'app_twice', 'app', { clientId });
    const firstClosed = new Promise<void>((resolve) => first.client.once('close', () => resolve()));
    const second = await peer(node.mqttUrl, 'app_twice', 'app', { clientId });
    await within(firstClosed, 5000, 'the first connection to be taken over');
    assert.ok(second.client.connected);
    await second.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: second.id, msgId: 'm', payload: { deviceId: 'device_none' }, timestamp: Date.now() }), { qos: 1 });
    await second.inbox.error('FORBIDDEN');
  });

  test('a connection is closed at its token\'s expiry and receives nothing after it', async () => {
    const counted = await metric('mqtt_connections_refused_total', { reason: 'token_expired' });
    const device = await peer(node.mqttUrl, 'device_exp', 'device');
    const shortToken = await token('app_short', 'app', [device.id], 2);
    const expMs = expiryOf(shortToken);
    const app = await peer(node.mqttUrl, 'app_short', 'app', { token: shortToken });
    const { sessionId } = await requestSession(app, device.id);
    const arrivals: number[] = [];
    app.client.on('message', () => arrivals.push(Date.now()));
    const closedAt = new Promise<number>((resolve) => app.client.once('close', () => resolve(Date.now())));
    let sending = true;
    const sender = (async () => {
      while (sending) {
        await device.send(app.id, { type: 'keepalive', sessionId, payload: {} }, 0).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const at = await within(closedAt, expMs - Date.now() + 5000, 'the broker to close the expired connection');
    sending = false;
    await sender;
    assert.ok(at >= expMs - 50, `closed ${expMs - at} ms before the expiry`);
    assert.ok(arrivals.length > 0, 'keepalives flowed before the expiry');
    assert.ok(arrivals.every((t) => t <= at), 'nothing after the close');
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'token_expired' }), counted + 1);
    // Logging in again with the expired token is refused.
    await assert.rejects(connectPeer(node.mqttUrl, 'app_short', 'app', { token: shortToken }), (err: Error & { code?: number }) => err.code === 4);
  });

  test('the SDK logs in again with a fresh token from its provider and resubscribes', async () => {
    const shortToken = await token('device_sdk', 'device', [], 3);
    let provided = 0;
    const sdk = await SignalingClient.open({
      url: node.mqttUrl, id: 'device_sdk', role: 'device', token: shortToken, reconnectMs: 200,
      tokenProvider: async () => {
        provided++;
        return token('device_sdk', 'device', [], 3600);
      },
    });
    try {
      const reasons: string[] = [];
      sdk.on('down', ({ reason }) => reasons.push(reason));
      const again = new Promise<void>((resolve) => sdk.on('up', ({ reconnect }) => { if (reconnect) resolve(); }));
      await within(again, expiryOf(shortToken) - Date.now() + 8000, 'the SDK to come back after the expiry');
      assert.ok(provided >= 1);
      assert.ok(reasons.length >= 1, 'it was closed at the expiry');
      // Resubscribed: an app's offer reaches it on the new connection.
      const app = await peer(node.mqttUrl, 'app_of_sdk', 'app', { devices: ['device_sdk'] });
      const got = new Promise<SignalMessage>((resolve) => sdk.on('message', (m) => { if (m.type === 'offer') resolve(m); }));
      const { sessionId } = await requestSession(app, 'device_sdk');
      await app.send('device_sdk', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
      assert.equal((await within(got, 5000, 'the offer through the SDK')).sessionId, sessionId);
    } finally {
      await sdk.close();
    }
  });

  test('the SDK without a provider reports AUTH_FAILED once its token expired', async () => {
    const shortToken = await token('device_sdk2', 'device', [], 3);
    const sdk = await SignalingClient.open({ url: node.mqttUrl, id: 'device_sdk2', role: 'device', token: shortToken, reconnectMs: 200 });
    try {
      const failed = new Promise<string>((resolve) => sdk.on('error', (e) => resolve(e.code)));
      assert.equal(await within(failed, expiryOf(shortToken) - Date.now() + 8000, 'AUTH_FAILED'), 'AUTH_FAILED');
    } finally {
      sdk.destroy();
    }
  });

  test('a stranger flooding refused messages that name a victim\'s session leaves its trace untouched', async () => {
    const device = await peer(node.mqttUrl, 'device_victim', 'device');
    const app = await peer(node.mqttUrl, 'app_victim', 'app', { devices: [device.id] });
    const { sessionId } = await requestSession(app, device.id);
    await app.send(device.id, { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer');
    await device.send(app.id, { type: 'answer', sessionId, payload: { sdp: SDP_ANSWER } });
    await app.inbox.next((m) => m.body.type === 'answer');
    await waitUntil(async () => (await node.store.trace(sessionId)).some((e) => e.what === 'answer'), 'the answer in the trace');
    const real = await node.store.trace(sessionId);
    const forbidden = await metric('signaling_errors_total', { code: 'FORBIDDEN' });

    // More refused messages than the trace keeps (1000 events), from an app and a device of their own.
    const evilApp = await peer(node.mqttUrl, 'app_attacker', 'app', { devices: ['*'] });
    const evilDevice = await peer(node.mqttUrl, 'device_attacker', 'device');
    const rounds = 600;
    for (let i = 0; i < rounds; i++) {
      void evilApp.send(device.id, { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } }, 0);
      void evilDevice.send(app.id, { type: 'bye', sessionId, payload: { reason: 'evicted' } }, 0);
    }
    await waitUntil(() => evilApp.inbox.ofType('error').length >= rounds && evilDevice.inbox.ofType('error').length >= rounds,
      'every flooded message refused', 30_000);
    assert.ok(evilApp.inbox.ofType('error').every((m) => (m.body.payload as { code: string }).code === 'FORBIDDEN'));
    assert.ok(await metric('signaling_errors_total', { code: 'FORBIDDEN' }) >= forbidden + 2 * rounds, 'counted');

    const trace = await node.store.trace(sessionId);
    assert.deepEqual(trace, real, 'the victim\'s trace is what it was');
    assert.ok(trace.some((e) => e.what === 'offer') && trace.some((e) => e.what === 'answer'));
    assert.equal(JSON.stringify(trace).includes('attacker'), false);
    assert.equal(device.inbox.messages.filter((m) => m.body.from === evilApp.id).length, 0, 'nothing reached the victim');
    assert.equal((await node.store.get(sessionId))?.status, 'connecting', 'the flooded bye did not close it');
  });

  test('a CONNECT announcing 200 MiB over TCP is cut at its fixed header; memory stays flat; others still connect', async (t) => {
    const counted = await metric('mqtt_connections_refused_total', { reason: 'connect_too_large' });
    const rssBefore = process.memoryUsage().rss;
    // Remaining Length 200 MiB = 100 × 128³ (MQTT 3.1.1 §2.2.3), then the body, streamed.
    const header = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const attacks = await Promise.all([0, 1].map(async () => {
      const s = await rawTcp(mqttPort);
      s.on('error', () => undefined);
      const closed = closeOf(s);
      s.write(header);
      return floodUntilClosed((c) => new Promise<void>((resolve, reject) => {
        if (s.destroyed) reject(new Error('closed'));
        else if (s.write(c)) resolve();
        else s.once('drain', resolve);
      }), closed, chunk, 200 * MiB);
    }));
    const ATTACKS = attacks.map((a) => a.sentBytes);
    for (const a of attacks) {
      assert.ok(a.closed, 'the server closed the connection');
      assert.ok(a.sentBytes < 32 * MiB, `cut after ${a.sentBytes} bytes`);
    }
    const grownMiB = (process.memoryUsage().rss - rssBefore) / MiB;
    t.diagnostic(`RSS +${grownMiB.toFixed(1)} MiB; cut after ${JSON.stringify(ATTACKS)} bytes`);
    assert.ok(grownMiB < 30, `RSS grew ${grownMiB.toFixed(1)} MiB`);
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'connect_too_large' }), counted + 2);
    await healthyPair('tcp');
  });

  test('over WebSocket the limit is per MQTT packet: a CONNECT streamed in many small frames is cut', async (t) => {
    const counted = await metric('mqtt_connections_refused_total', { reason: 'connect_too_large' });
    const rssBefore = process.memoryUsage().rss;
    const openWs = async (): Promise<WebSocket> => {
      const ws = new WebSocket(node.wsUrl, 'mqtt');
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      return ws;
    };
    const flood = async (ws: WebSocket, header: Buffer): Promise<{ closed: boolean; sentBytes: number }> => {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      for (const b of header) ws.send(Buffer.from([b])); // the header itself split across frames
      const frame = Buffer.alloc(8 * 1024, 0x61);
      return floodUntilClosed((c) => new Promise<void>((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) reject(new Error('closed'));
        else ws.send(c, (err) => (err ? reject(err) : resolve()));
      }), closed, frame, 200 * MiB);
    };
    // 200 MiB announced; and 20 KiB, just above the CONNECT cap and far below the frame limit.
    const big = await flood(await openWs(), Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]));
    const small = await flood(await openWs(), Buffer.from([0x10, 0x80, 0xa0, 0x01]));
    const ATTACKS = [big.sentBytes, small.sentBytes];
    for (const a of [big, small]) {
      assert.ok(a.closed, 'the server closed the WebSocket');
      assert.ok(a.sentBytes < 8 * MiB, `cut after ${a.sentBytes} bytes`);
    }
    const grownMiB = (process.memoryUsage().rss - rssBefore) / MiB;
    t.diagnostic(`RSS +${grownMiB.toFixed(1)} MiB; cut after ${JSON.stringify(ATTACKS)} bytes`);
    assert.ok(grownMiB < 30, `RSS grew ${grownMiB.toFixed(1)} MiB`);
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'connect_too_large' }), counted + 2);
    await healthyPair('ws');
  });

  test('after login, a packet above --mqtt-max-packet closes the connection at its header', async () => {
    const counted = await metric('mqtt_connections_refused_total', { reason: 'packet_too_large' });
    const app = await peer(node.mqttUrl, 'app_bigpacket', 'app', { devices: ['device_x'] });
    const closed = new Promise<void>((resolve) => app.client.once('close', () => resolve()));
    // A PUBLISH announcing 100 MiB; only its header goes out.
    app.client.stream.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x32]));
    await within(closed, 5000, 'the close');
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'packet_too_large' }), counted + 1);
    await healthyPair('packet');
  });

  test('one source holds at most 32 connections before login; the extras are closed; other clients work', { skip: netnsSupported() }, async () => {
    const counted = await metric('mqtt_connections_refused_total', { reason: 'preauth_per_source' });
    const loggedIn = await peer(node.mqttUrl, 'app_before_flood', 'app', { devices: ['device_none'] });
    const ns = createNetNs();
    try {
      // 40 sockets from the namespace that never send a CONNECT.
      const script = `const net = require('node:net'); const socks = [];
        for (let i = 0; i < 40; i++) { const s = net.connect(${mqttPort}, '${ns.hostIp}'); s.on('error', () => {}); socks.push(s); }
        setInterval(() => {}, 1000);`;
      ns.spawn([process.execPath, '-e', script]);
      await waitUntil(async () => await metric('mqtt_connections_refused_total', { reason: 'preauth_per_source' }) >= counted + 8, 'the extra sockets refused', 10_000);
      // A client from another source logs in and works; the one logged in before still works.
      await healthyPair('preauth');
      await loggedIn.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: loggedIn.id, msgId: 'p', payload: { deviceId: 'device_none' }, timestamp: Date.now() }), { qos: 1 });
      await loggedIn.inbox.error('DEVICE_OFFLINE');
      assert.equal(await metric('mqtt_connections_refused_total', { reason: 'preauth_per_source' }), counted + 8, 'exactly the 8 beyond 32');
    } finally {
      ns.destroy();
    }
  });
});
