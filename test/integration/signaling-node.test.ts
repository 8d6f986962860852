/**
 * The signaling role as users run it: `p2pd serve` (a real process, node.ts wiring) with the
 * embedded broker on --mqtt and at {server}/mqtt, next to the session API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { JWT_SECRET, SDP_ANSWER, SDP_OFFER, connectPeer, requestSession, sleep, token, type Peer } from '../helpers/signaling.ts';

/** A `session` notice from the server on the device's topic (docs/signaling.md "Session notices"). */
async function assertNoticed(device: Peer, sessionId: string, deviceId: string): Promise<void> {
  const notice = await device.inbox.next((m) => m.body.type === 'session' && m.body.sessionId === sessionId, 5000, 'the session notice');
  assert.equal(notice.body.from, 'server');
  assert.equal(notice.body.to, deviceId);
  const payload = notice.body.payload as { deviceId: string; iceServers: Array<{ urls: string[]; username?: string }> };
  assert.equal(payload.deviceId, deviceId);
  const turn = payload.iceServers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
  // TURN REST credentials of this session (docs/turn.md): "<expiry>:<sessionId>".
  assert.match(turn?.username ?? '', new RegExp(`^\\d+:${sessionId}(:|$)`));
}

describe('p2pd serve with the embedded broker', () => {
  let p2pd: P2pdProcess;
  let mqttUrl: string;
  let wsUrl: string;
  const peers: Peer[] = [];

  before(async () => {
    const mqttPort = await freePort();
    p2pd = await startP2pd({ args: ['--mqtt', `127.0.0.1:${mqttPort}`, '--jwt-secret', JWT_SECRET, '--roles', 'stun,turn,signal,api'] });
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    wsUrl = `${p2pd.httpUrl.replace('http:', 'ws:')}/mqtt`;
  });
  after(async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    await p2pd?.stop();
  });

  test('HTTP sessions know device presence; MQTT over TCP and WebSocket carry the exchange', async () => {
    const appTok = await token('app_n1', 'app', ['device_n1']);
    const create = (): Promise<Response> => fetch(`${p2pd.httpUrl}/v1/sessions`, {
      method: 'POST', headers: { authorization: `Bearer ${appTok}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: 'device_n1' }),
    });
    const offline = await create();
    assert.equal(offline.status, 409);
    assert.equal(((await offline.json()) as { error: { code: string } }).error.code, 'DEVICE_OFFLINE');

    const device = await connectPeer(mqttUrl, 'device_n1', 'device');
    const app = await connectPeer(wsUrl, 'app_n1', 'app', { token: appTok });
    peers.push(device, app);
    await sleep(100);
    const created = await create();
    assert.equal(created.status, 201, await created.clone().text());
    const { sessionId } = (await created.json()) as { sessionId: string };
    // The device hears of the session before any offer, with ICE servers minted for it.
    await assertNoticed(device, sessionId, 'device_n1');

    await app.send('device_n1', { type: 'offer', sessionId, payload: { sdp: SDP_OFFER } });
    await device.inbox.next((m) => m.body.type === 'offer');
    await device.send('app_n1', { type: 'answer', sessionId, payload: { sdp: SDP_ANSWER } });
    await app.inbox.next((m) => m.body.type === 'answer');
    await app.send('device_n1', { type: 'keepalive', sessionId, payload: { state: 'connected', path: 'direct' } }, 0);
    await sleep(200);
    const got = await fetch(`${p2pd.httpUrl}/v1/sessions/${sessionId}`, { headers: { authorization: `Bearer ${appTok}` } });
    assert.equal(((await got.json()) as { status: string }).status, 'connected');
    const trace = await fetch(`${p2pd.httpUrl}/v1/sessions/${sessionId}/trace`, { headers: { authorization: `Bearer ${appTok}` } });
    const events = ((await trace.json()) as { events: Array<{ kind: string; what: string }> }).events;
    assert.deepEqual(events.filter((e) => e.kind === 'signal').map((e) => e.what), ['offer', 'answer', 'keepalive']);

    // …and a session asked for over MQTT is a session of the same API.
    const viaMqtt = await requestSession(app, 'device_n1');
    await assertNoticed(device, viaMqtt.sessionId, 'device_n1');
    const read = await fetch(`${p2pd.httpUrl}/v1/sessions/${viaMqtt.sessionId}`, { headers: { authorization: `Bearer ${appTok}` } });
    assert.equal(read.status, 200);

    const metrics = await (await fetch(`${p2pd.httpUrl}/metrics`)).text();
    assert.match(metrics, /signaling_messages_total\{type="offer"\} 1/);
    assert.match(metrics, /p2p_connections_total\{path="direct"\} 1/);
  });

  test('an offer sent with POST /v1/sessions reaches the device after the notice, as the app\'s own offer, once', async () => {
    const appTok = await token('app_n2', 'app', ['device_n2']);
    const device = await connectPeer(mqttUrl, 'device_n2', 'device');
    const app = await connectPeer(wsUrl, 'app_n2', 'app', { token: appTok });
    peers.push(device, app);
    await sleep(100);
    const post = (body: unknown): Promise<Response> => fetch(`${p2pd.httpUrl}/v1/sessions`, {
      method: 'POST', headers: { authorization: `Bearer ${appTok}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const metricsBefore = await (await fetch(`${p2pd.httpUrl}/metrics`)).text();
    const offersBefore = Number(/signaling_messages_total\{type="offer"\} (\d+)/.exec(metricsBefore)?.[1] ?? 0);

    const msgId = 'first-offer-1';
    const created = await post({ deviceId: 'device_n2', offer: { sdp: SDP_OFFER, msgId, iceTransportPolicy: 'direct' } });
    assert.equal(created.status, 201, await created.clone().text());
    const { sessionId, offered } = (await created.json()) as { sessionId: string; offered?: boolean };
    assert.equal(offered, true, 'the answer says the offer is on its way');
    const offer = await device.inbox.next((m) => m.body.type === 'offer' && m.body.sessionId === sessionId, 5000, 'the offer of the session request');
    const notice = device.inbox.messages.findIndex((m) => m.body.type === 'session' && m.body.sessionId === sessionId);
    assert.ok(notice >= 0 && notice < device.inbox.messages.indexOf(offer), 'the notice comes before the offer');
    assert.equal(offer.body.from, 'app_n2');
    assert.equal(offer.body.to, 'device_n2');
    assert.equal(offer.body.msgId, msgId);
    assert.deepEqual(offer.body.payload, { type: 'offer', sdp: SDP_OFFER, iceTransportPolicy: 'direct' });

    // The app's own resend under the same msgId (no answer yet) is the same message: not forwarded.
    await app.send('device_n2', { type: 'offer', sessionId, msgId, payload: { type: 'offer', sdp: SDP_OFFER } });
    await device.send('app_n2', { type: 'answer', sessionId, replyTo: msgId, payload: { sdp: SDP_ANSWER } });
    const answer = await app.inbox.next((m) => m.body.type === 'answer' && m.body.sessionId === sessionId);
    assert.equal(answer.body.replyTo, msgId);
    await sleep(200);
    assert.equal(device.inbox.messages.filter((m) => m.body.type === 'offer' && m.body.sessionId === sessionId).length, 1);

    const trace = await fetch(`${p2pd.httpUrl}/v1/sessions/${sessionId}/trace`, { headers: { authorization: `Bearer ${appTok}` } });
    const events = ((await trace.json()) as { events: Array<{ kind: string; what: string }> }).events;
    assert.deepEqual(events.filter((e) => e.kind === 'signal').map((e) => e.what), ['offer', 'answer']);
    const metrics = await (await fetch(`${p2pd.httpUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`signaling_messages_total\\{type="offer"\\} ${offersBefore + 1}\n`));

    // A malformed offer is refused with the request, and opens no session.
    for (const bad of [{ sdp: '', msgId }, { sdp: SDP_OFFER }, { sdp: 'x'.repeat(70_000), msgId }, { sdp: SDP_OFFER, msgId: 'm'.repeat(129) }]) {
      const r = await post({ deviceId: 'device_n2', offer: bad });
      assert.equal(r.status, 400, JSON.stringify(bad).slice(0, 80));
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST');
    }
  });
});
