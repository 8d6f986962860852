import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createHs256Signer, createVerifier } from '../auth/token.ts';
import { aclRules } from '../signaling/acl.ts';
import { dynsecAcls } from './dynsec.ts';
import { registerBrokerRoutes } from './routes.ts';

const SECRET = 'routes-secret';

test('EMQX HTTP authentication: allow with the token\'s ACL, deny otherwise, the service as superuser', async () => {
  const app = Fastify();
  registerBrokerRoutes(app, { verifier: await createVerifier({ secret: SECRET }), log: pino({ level: 'silent' }), serviceLogin: { username: 'p2pd', password: 'svc' } });
  const tok = await createHs256Signer(SECRET).sign({ sub: 'app_1', role: 'app', devices: ['device_1'] });
  const auth = async (body: Record<string, string>): Promise<Record<string, unknown>> =>
    (await app.inject({ method: 'POST', url: '/v1/mqtt/auth', payload: body })).json();

  const ok = await auth({ username: 'app_1', password: tok, clientid: 'app_1-tab' });
  assert.equal(ok.result, 'allow');
  assert.equal(ok.is_superuser, false);
  assert.equal(typeof ok.expire_at, 'number');
  assert.deepEqual(ok.acl, [
    { permission: 'allow', action: 'subscribe', topic: 'p2p/signal/app/app_1' },
    { permission: 'allow', action: 'publish', topic: 'p2p/signal/server', retain: false },
    { permission: 'allow', action: 'publish', topic: 'p2p/signal/device/device_1', retain: false },
    { permission: 'allow', action: 'subscribe', topic: 'p2p/presence/device/device_1' },
  ]);
  assert.equal((await auth({ username: 'app_2', password: tok })).result, 'deny');
  assert.equal((await auth({ username: 'app_1', password: 'garbage' })).result, 'deny');
  assert.deepEqual(await auth({ username: 'p2pd', password: 'svc' }), { result: 'allow', is_superuser: true });
  assert.equal((await auth({ username: 'p2pd', password: 'nope' })).result, 'deny');
  await app.close();
});

test('/v1/mqtt/credentials wants a valid bearer token', async () => {
  const app = Fastify();
  registerBrokerRoutes(app, { verifier: await createVerifier({ secret: SECRET }), log: pino({ level: 'silent' }) });
  const tok = await createHs256Signer(SECRET).sign({ sub: 'device_1', role: 'device' });
  const ok = await app.inject({ method: 'POST', url: '/v1/mqtt/credentials', headers: { authorization: `Bearer ${tok}` } });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual({ ...ok.json<Record<string, unknown>>(), expiresAt: 0 }, { username: 'device_1', expiresAt: 0, provisioned: false });
  const none = await app.inject({ method: 'POST', url: '/v1/mqtt/credentials' });
  assert.ok(none.statusCode >= 400);
  await app.close();
});

test('Mosquitto dynamic-security ACLs mirror the rules', () => {
  assert.deepEqual(dynsecAcls(aclRules({ sub: 'device_1', role: 'device', devices: [] })), [
    { acltype: 'subscribeLiteral', topic: 'p2p/signal/device/device_1', allow: true },
    { acltype: 'publishClientSend', topic: 'p2p/signal/app/+', allow: true },
    { acltype: 'publishClientSend', topic: 'p2p/signal/server', allow: true },
    { acltype: 'publishClientSend', topic: 'p2p/presence/device/device_1', allow: true },
  ]);
  assert.equal(dynsecAcls(aclRules({ sub: 'app_1', role: 'app', devices: ['*'] })).find((a) => a.topic === 'p2p/presence/device/+')?.acltype, 'subscribePattern');
});
