import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createHs256Signer, createVerifier, type ClientClaims } from '../auth/token.ts';
import { MemorySessionStore } from '../session/memoryStore.ts';
import { newSession } from '../session/model.ts';
import { aclRules } from './acl.ts';
import { natTypeLabel } from './flow.ts';
import { SignalingService, type Sender } from './service.ts';
import { createSessionInStore } from './sessionRequest.ts';

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
    createSession: createSessionInStore(store, { region: 'default', ttlSec: 600, stunServer: 'stun:127.0.0.1:3478', turnNode: 'n1' }),
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

test('NAT types become a small fixed label set', () => {
  assert.equal(natTypeLabel('Full Cone'), 'full cone');
  assert.equal(natTypeLabel('port_restricted_cone'), 'port-restricted cone');
  assert.equal(natTypeLabel('symmetric'), 'symmetric');
  assert.equal(natTypeLabel('something new'), 'other');
});
