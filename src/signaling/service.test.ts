import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createHs256Signer, createVerifier, type ClientClaims } from '../auth/token.ts';
import { MemorySessionStore } from '../session/memoryStore.ts';
import { newSession } from '../session/model.ts';
import { aclRules } from './acl.ts';
import { natTypeLabel } from './flow.ts';
import { natTypeTotal, signalingDuplicatesTotal } from '../metrics/metrics.ts';
import { eventually } from '../../test/helpers/wait.ts';
import { SignalingService, type Sender } from './service.ts';
import { oneNodeSessions } from '../../test/helpers/sessions.ts';
import { sessionActions } from '../session/actions.ts';

const SECRET = 'unit-secret';
const log = pino({ level: 'silent' });

function sender(sub: string, role: 'app' | 'device', devices: string[] = []): Sender {
  const claims: ClientClaims = { sub, role, devices, exp: Math.floor(Date.now() / 1000) + 3600 };
  return { id: sub, role, claims, rules: aclRules(claims) };
}

async function setup() {
  const store = new MemorySessionStore();
  const sent: Array<{ topic: string; body: Record<string, unknown> }> = [];
  const service = new SignalingService({
    store, log, verifier: await createVerifier({ secret: SECRET }),
    createSession: oneNodeSessions(store).create,
  });
  service.setPublisher({ publish: async (topic, payload) => { sent.push({ topic, body: JSON.parse(payload) as Record<string, unknown> }); } });
  const now = Math.floor(Date.now() / 1000);
  await store.create(newSession({ sessionId: 's1', appId: 'app_1', deviceId: 'device_1', stunServer: '', turnNode: 'n1', region: 'default', ttl: 600, now }));
  service.presence.set('device_1', true);
  const codes = (): string[] => sent.map((s) => (s.body.payload as { code: string }).code);
  return { store, service, sent, codes };
}

const msg = (over: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({
  type: 'offer', sessionId: 's1', from: 'app_1', to: 'device_1', timestamp: Date.now(), payload: { sdp: 'v=0' }, ...over,
}));

test('lets a valid offer through and refuses what breaks the rules, telling the sender', async () => {
  const { service, codes, sent } = await setup();
  const app = sender('app_1', 'app', ['device_1', 'device_2']);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({}), false), true);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ from: 'app_2' }), false), false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_3', msg({ to: 'device_3' }), false), false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_2', msg({}), false), false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ sessionId: 'nope' }), false), false);
  assert.equal(await service.authorizePublish(app, 'p2p/other', msg({}), false), false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({}), true), false);
  assert.deepEqual(codes(), ['FORGED_FROM', 'FORBIDDEN', 'BAD_MESSAGE', 'SESSION_NOT_FOUND', 'FORBIDDEN', 'FORBIDDEN']);
  for (const s of sent) {
    assert.equal(s.topic, 'p2p/signal/app/app_1');
    assert.equal(s.body.type, 'error');
    assert.equal(s.body.from, 'server');
  }
});

test('an offer to an offline device is DEVICE_OFFLINE; offers on a closed session SESSION_CLOSED; bye still passes', async () => {
  const { service, store, codes } = await setup();
  const app = sender('app_1', 'app', ['device_1']);
  service.presence.set('device_1', false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({}), false), false);
  service.presence.set('device_1', true);
  await store.close('s1', 'deleted', Math.floor(Date.now() / 1000));
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({}), false), false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ type: 'bye', payload: {} }), false), true);
  assert.deepEqual(codes(), ['DEVICE_OFFLINE', 'SESSION_CLOSED']);
});

test('a retried msgId is dropped silently; a refused one may be retried', async () => {
  const { service, sent } = await setup();
  const app = sender('app_1', 'app', ['device_1']);
  service.presence.set('device_1', false);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ msgId: 'a' }), false), false);
  service.presence.set('device_1', true);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ msgId: 'a' }), false), true);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ msgId: 'a' }), false), false);
  assert.equal(sent.length, 1, 'only the DEVICE_OFFLINE answer');
});

test('behind an external broker, a forged from is reported to the session\'s real party', async () => {
  const { service, sent } = await setup();
  await service.observe('p2p/signal/device/device_1', msg({ from: 'app_evil' }));
  assert.equal(sent.length, 1);
  assert.equal(sent[0]?.topic, 'p2p/signal/app/app_1');
  assert.equal((sent[0]?.body.payload as { code: string }).code, 'FORGED_FROM');
  await service.observe('p2p/signal/app/app_1', Buffer.from(JSON.stringify({ type: 'error', from: 'server', to: 'app_1', timestamp: 1, payload: { code: 'X', message: '' } })));
  assert.equal(sent.length, 1, 'its own answers are ignored');
});

test('session requests: the connection\'s claims, or a token behind an external broker', async () => {
  const { service, sent } = await setup();
  const app = sender('app_1', 'app', ['device_1']);
  const req = (over: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ type: 'session', from: 'app_1', msgId: 'r1', timestamp: Date.now(), payload: { deviceId: 'device_1' }, ...over }));
  assert.equal(await service.authorizePublish(app, 'p2p/signal/server', req({}), false), false, 'requests are not forwarded');
  await service.stop();
  assert.equal(sent[0]?.body.type, 'session');
  assert.equal(sent[0]?.body.replyTo, 'r1');
  const tok = await createHs256Signer(SECRET).sign({ sub: 'app_1', role: 'app', devices: ['device_1'] });
  await service.observe('p2p/signal/server', req({ msgId: 'r2' }));
  await service.observe('p2p/signal/server', req({ msgId: 'r3', payload: { deviceId: 'device_1', token: tok } }));
  await service.observe('p2p/signal/server', req({ msgId: 'r4', payload: { deviceId: 'device_2', token: tok } }));
  assert.deepEqual(sent.slice(1).map((s) => [s.body.replyTo, s.body.type, (s.body.payload as { code?: string }).code]), [
    ['r2', 'error', 'BAD_MESSAGE'], ['r3', 'session', undefined], ['r4', 'error', 'FORBIDDEN'],
  ]);
});

test('presence messages move presence; anything else on a presence topic is refused', async () => {
  const { service, codes } = await setup();
  const device = sender('device_1', 'device');
  assert.equal(await service.authorizePublish(device, 'p2p/presence/device/device_1', Buffer.from('offline'), true), true);
  assert.equal(service.isDeviceOnline('device_1'), false);
  assert.equal(await service.authorizePublish(device, 'p2p/presence/device/device_1', Buffer.from('online'), true), true);
  assert.equal(service.isDeviceOnline('device_1'), true);
  assert.equal(await service.authorizePublish(device, 'p2p/presence/device/device_1', Buffer.from('{"x":1}'), true), false);
  assert.equal(await service.authorizePublish(device, 'p2p/presence/device/device_2', Buffer.from('offline'), true), false);
  assert.deepEqual(codes(), ['BAD_MESSAGE', 'FORBIDDEN']);
});

test('a peer message without a session is refused with SESSION_REQUIRED and not forwarded, on both brokers', async () => {
  const { service, codes, sent } = await setup();
  const device = sender('device_1', 'device');
  const sessionless = msg({ type: 'error', sessionId: '', from: 'device_1', to: 'app_1', payload: { code: 'PAY_NOW', message: 'visit evil.example' } });
  assert.equal(await service.authorizePublish(device, 'p2p/signal/app/app_1', sessionless, false), false);
  assert.equal(await service.authorizePublish(device, 'p2p/signal/app/app_1', msg({ type: 'bye', sessionId: undefined, from: 'device_1', to: 'app_1' }), false), false);
  assert.deepEqual(codes(), ['SESSION_REQUIRED', 'BAD_MESSAGE']);
  assert.ok(sent.every((s) => s.topic === 'p2p/signal/device/device_1'), 'only the sender is answered');
  // Behind an external broker the broker delivered it already; the service still refuses and answers the sender.
  await service.observe('p2p/signal/app/app_1', sessionless);
  assert.equal(sent.at(-1)?.topic, 'p2p/signal/device/device_1');
  assert.equal((sent.at(-1)?.body.payload as { code: string }).code, 'SESSION_REQUIRED');
  // A device's error inside its own session still passes.
  assert.equal(await service.authorizePublish(device, 'p2p/signal/app/app_1', msg({ type: 'error', from: 'device_1', to: 'app_1', payload: { code: 'DEVICE_BUSY', message: 'busy' } }), false), true);
});

test('refused messages naming someone else\'s session stay out of its trace and evict nothing', async () => {
  const { service, store } = await setup();
  const app = sender('app_1', 'app', ['device_1']);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ msgId: 'real-offer' }), false), true);
  await service.stop();
  const before = await store.trace('s1');
  assert.ok(before.some((e) => e.what === 'offer'));
  const evil = sender('app_evil', 'app', ['device_1']);
  const evilDevice = sender('device_evil', 'device');
  for (let i = 0; i < 300; i++) {
    await service.authorizePublish(evil, 'p2p/signal/device/device_1', msg({ from: 'app_evil', msgId: `e${i}` }), false);
    await service.authorizePublish(evil, 'p2p/signal/device/device_1', msg({ from: 'app_1', msgId: `f${i}` }), false);
    await service.authorizePublish(evilDevice, 'p2p/signal/app/app_1', msg({ from: 'device_evil', to: 'app_1', type: 'bye', payload: {} }), false);
    await service.observe('p2p/signal/device/device_1', msg({ from: 'app_evil', msgId: `g${i}` }));
  }
  await service.stop();
  assert.deepEqual(await store.trace('s1'), before, 'the trace is exactly what it was');
  // A participant's own refusal (an offer on a closed session) is part of its session's story.
  const fresh = await setup();
  await fresh.store.close('s1', 'deleted', Math.floor(Date.now() / 1000));
  assert.equal(await fresh.service.authorizePublish(app, 'p2p/signal/device/device_1', msg({}), false), false);
  await fresh.service.stop();
  const after = await fresh.store.trace('s1');
  assert.equal((after.at(-1)?.detail as { code?: string } | undefined)?.code, 'SESSION_CLOSED');
});

test('NAT types become a small fixed label set', () => {
  assert.equal(natTypeLabel('Full Cone'), 'full cone');
  assert.equal(natTypeLabel('port_restricted_cone'), 'port-restricted cone');
  assert.equal(natTypeLabel('symmetric'), 'symmetric');
  assert.equal(natTypeLabel('something new'), 'other');
  // What the SDK reports (src/sdk/natDetect.ts NAT_TYPES), in any case.
  assert.equal(natTypeLabel('udp blocked'), 'UDP blocked');
  assert.equal(natTypeLabel('cone'), 'cone');
  assert.equal(natTypeLabel('Open Internet'), 'open internet');
  assert.equal(natTypeLabel('unknown'), 'unknown');
});

test('with a wake timeout, a session request for a sleeping device waits for it and is answered once it is online', async () => {
  const store = new MemorySessionStore();
  const sent: Array<{ topic: string; body: Record<string, unknown>; retain: boolean }> = [];
  const late: { service?: SignalingService } = {};
  const actions = sessionActions({
    store,
    cluster: { nodes: () => [{ id: 'n1', region: 'default', roles: ['stun', 'turn', 'signal', 'api'], host: '127.0.0.1', port: 3478,
      load: { allocations: 0, bps: 0 }, capacity: { allocations: 0, bps: 0 }, draining: false, heartbeatAt: Date.now(), heartbeatMs: 5000 }],
    regionOf: () => 'default' },
    authSecret: 'x', sessionTtlSec: 600,
    isDeviceOnline: (id) => late.service?.isDeviceOnline(id),
    wakeDevice: (id) => (late.service?.waker as NonNullable<SignalingService['waker']>).wake(id),
  });
  const service = late.service = new SignalingService({ store, log, verifier: await createVerifier({ secret: SECRET }), createSession: actions.create, wake: { timeoutMs: 5000 } });
  service.setPublisher({ publish: async (topic, payload, o) => { sent.push({ topic, body: payload === '' ? {} : JSON.parse(payload) as Record<string, unknown>, retain: o.retain === true }); } });
  const app = sender('app_1', 'app', ['cam-z']);
  await service.authorizePublish(app, 'p2p/signal/server', Buffer.from(JSON.stringify({ type: 'session', from: 'app_1', msgId: 'w1', timestamp: Date.now(), payload: { deviceId: 'cam-z' } })), false);
  for (let i = 0; i < 100 && sent.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(sent.map((s) => [s.topic, s.body.type, s.retain]), [['p2p/signal/device/cam-z', 'wake', true]], 'a retained wake, no answer yet');
  service.presence.set('cam-z', true);
  await service.stop();
  const answer = sent.find((s) => s.topic === 'p2p/signal/app/app_1');
  assert.equal(answer?.body.type, 'session');
  assert.equal(answer?.body.replyTo, 'w1');
  assert.ok(sent.some((s) => s.topic === 'p2p/signal/device/cam-z' && s.retain && s.body.type === undefined), 'the retained wake is cleared');
  const trace = await store.trace(answer?.body.sessionId as string);
  assert.deepEqual(trace.filter((e) => e.kind === 'api').map((e) => e.what), ['wake', 'woke']);
});

test('a NAT type in an answer counts once for its sender, and the same in a later keepalive does not count again', async () => {
  const { service, store } = await setup();
  const device = sender('device_1', 'device');
  const count = async (type: string): Promise<number> => (await natTypeTotal.get()).values.find((v) => v.labels.type === type)?.value ?? 0;
  const before = await count('port-restricted cone');
  const answer = msg({ type: 'answer', from: 'device_1', to: 'app_1', payload: { sdp: 'v=0', natType: 'port-restricted cone' } });
  assert.equal(await service.authorizePublish(device, 'p2p/signal/app/app_1', answer, false), true);
  await eventually('the answer counted', async () => (await count('port-restricted cone')) === before + 1, 2000);
  const keepalive = msg({ type: 'keepalive', from: 'device_1', to: 'app_1', payload: { state: 'connected', natType: 'port-restricted cone' } });
  assert.equal(await service.authorizePublish(device, 'p2p/signal/app/app_1', keepalive, false), true);
  // The keepalive's tracking is done once the session reads connected (it sets that).
  await eventually('the keepalive tracked', async () => (await store.get('s1'))?.status === 'connected', 2000);
  assert.equal(await count('port-restricted cone'), before + 1, 'once per party and session');
  const bad = msg({ type: 'answer', from: 'device_1', to: 'app_1', payload: { sdp: 'v=0', natType: 'x'.repeat(65) } });
  assert.equal(await service.authorizePublish(device, 'p2p/signal/app/app_1', bad, false), false, 'a natType over 64 characters is refused like a keepalive\'s');
});

test('the offer of a session request: after the notice on the device\'s topic, as the app\'s, counted once; its copy through an external broker is not a duplicate; the app\'s retry is', async () => {
  const { service, sent, store } = await setup();
  const dups = async (): Promise<number> => (await signalingDuplicatesTotal.get()).values[0]?.value ?? 0;
  const before = await dups();
  await service.announce({ sessionId: 's1', deviceId: 'device_1', appId: 'app_1' }, { sdp: 'v=0', msgId: 'o1', natType: 'full cone' });
  assert.deepEqual(sent.map((s) => [s.topic, s.body.type, s.body.from]), [
    ['p2p/signal/device/device_1', 'session', 'server'],
    ['p2p/signal/device/device_1', 'offer', 'app_1'],
  ]);
  assert.equal(sent[1]?.body.msgId, 'o1');
  assert.deepEqual(sent[1]?.body.payload, { type: 'offer', sdp: 'v=0', natType: 'full cone' });
  // Behind an external broker the service's own publish comes back through its subscription.
  const published = Buffer.from(JSON.stringify(sent[1]!.body));
  await service.observe('p2p/signal/device/device_1', published);
  assert.equal(await dups(), before, 'our own delivery is not a duplicate');
  await eventually('the offer in the trace', async () => (await store.trace('s1')).some((e) => e.kind === 'signal' && e.what === 'offer'));
  assert.equal((await store.trace('s1')).filter((e) => e.kind === 'signal' && e.what === 'offer').length, 1);
  // The app's own resend under the same msgId is one.
  const app = sender('app_1', 'app', ['device_1']);
  assert.equal(await service.authorizePublish(app, 'p2p/signal/device/device_1', msg({ msgId: 'o1' }), false), false);
  assert.equal(await dups(), before + 1);
  // An offer the message rules refuse is not delivered: the app's MQTT resend gets the refusal.
  await service.announce({ sessionId: 's1', deviceId: 'device_1', appId: 'app_1' }, { sdp: 'v=0', msgId: 'o2', natType: 'x'.repeat(65) });
  assert.equal(sent.filter((s) => s.body.type === 'offer').length, 1);
});
