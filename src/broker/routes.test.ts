import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createHs256Signer, createVerifier } from '../auth/token.ts';
import { aclRules } from '../signaling/acl.ts';
import { dynsecAcls } from './dynsec.ts';
import { registerBrokerRoutes } from './routes.ts';
import { createHttpServer } from '../api/server.ts';
import { createLogger } from '../log.ts';

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
  const lower = await app.inject({ method: 'POST', url: '/v1/mqtt/credentials', headers: { authorization: `bearer ${tok}` } });
  assert.equal(lower.statusCode, 200, 'the scheme is case-insensitive (RFC 7235 §2.1), as on every other route');
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

/** The node's HTTP server (its error answers), without routes. */
const served = (): ReturnType<typeof createHttpServer> =>
  createHttpServer({ logger: createLogger('silent'), readiness: [], metrics: async () => ({ contentType: 'text/plain', body: '' }) });

test('/v1/mqtt/auth without --broker-hook-secret answers loopback callers only', async () => {
  const app = served();
  registerBrokerRoutes(app, { verifier: await createVerifier({ secret: SECRET }), log: pino({ level: 'silent' }) });
  const tok = await createHs256Signer(SECRET).sign({ sub: 'app_1', role: 'app', devices: ['device_1'] });
  const far = await app.inject({ method: 'POST', url: '/v1/mqtt/auth', payload: { username: 'app_1', password: tok }, remoteAddress: '10.1.2.3' });
  assert.equal(far.statusCode, 403);
  assert.equal(far.json<{ error: { code: string } }>().error.code, 'HOOK_FORBIDDEN');
  assert.equal(far.body.includes('allow'), false);
  const near = await app.inject({ method: 'POST', url: '/v1/mqtt/auth', payload: { username: 'app_1', password: tok }, remoteAddress: '::1' });
  assert.equal(near.json<{ result: string }>().result, 'allow');
  await app.close();
});

test('/v1/mqtt/auth with --broker-hook-secret wants it in x-p2pd-hook-secret, and budgets wrong guesses', async () => {
  const app = served();
  registerBrokerRoutes(app, { verifier: await createVerifier({ secret: SECRET }), log: pino({ level: 'silent' }), hookSecret: 'hook-s3cret' });
  const tok = await createHs256Signer(SECRET).sign({ sub: 'app_1', role: 'app', devices: ['device_1'] });
  const call = (headers: Record<string, string>, remoteAddress = '10.1.2.3') =>
    app.inject({ method: 'POST', url: '/v1/mqtt/auth', payload: { username: 'app_1', password: tok }, headers, remoteAddress });
  const tries: Record<string, string>[] = [{}, { 'x-p2pd-hook-secret': 'hook-s3cre' }, { 'x-p2pd-hook-secret': 'hook-s3cret!' }];
  for (const headers of tries) {
    const r = await call(headers, '127.0.0.1');
    assert.equal(r.statusCode, 403, 'loopback needs it too once it is set');
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'HOOK_FORBIDDEN');
  }
  assert.equal((await call({ 'x-p2pd-hook-secret': 'hook-s3cret' })).json<{ result: string }>().result, 'allow');
  const guesses = await Promise.all(Array.from({ length: 15 }, (_, i) => call({ 'x-p2pd-hook-secret': `guess-${i}` }, '10.9.9.9')));
  assert.equal(guesses.filter((r) => r.statusCode === 403).length, 10);
  const limited = guesses.filter((r) => r.statusCode === 429);
  assert.equal(limited.length, 5);
  assert.equal(limited[0]?.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
  assert.ok(Number(limited[0]?.headers['retry-after']) >= 1);
  assert.equal((await call({ 'x-p2pd-hook-secret': 'hook-s3cret' }, '10.1.2.3')).json<{ result: string }>().result, 'allow', 'another caller is unaffected');
  await app.close();
});

test('/v1/mqtt/auth: a burst of wrong passwords from one MQTT client address is limited; other clients log in', async () => {
  const app = served();
  registerBrokerRoutes(app, { verifier: await createVerifier({ secret: SECRET }), log: pino({ level: 'silent' }), serviceLogin: { username: 'p2pd', password: 'svc' } });
  const tok = await createHs256Signer(SECRET).sign({ sub: 'app_1', role: 'app', devices: ['device_1'] });
  const auth = (password: string, peerhost: string, username = 'app_1') =>
    app.inject({ method: 'POST', url: '/v1/mqtt/auth', payload: { username, password, clientid: 'c', peerhost } });
  const burst = [];
  for (let i = 0; i < 30; i++) burst.push(await auth(`wrong-${i}`, '198.51.100.7'));
  assert.ok(burst.slice(0, 10).every((r) => r.statusCode === 200 && r.json<{ result: string }>().result === 'deny'));
  assert.ok(burst.slice(12).every((r) => r.statusCode === 429 && r.json<{ error: { code: string } }>().error.code === 'RATE_LIMITED'), burst.map((r) => r.statusCode).join(','));
  const locked = await auth(tok, '198.51.100.7');
  assert.equal(locked.statusCode, 429, 'while limited the password is not even checked');
  assert.equal((await auth(tok, '198.51.100.8')).json<{ result: string }>().result, 'allow', 'the right login from another client works');
  assert.equal((await auth('svc', '127.0.0.1', 'p2pd')).json<{ result: string }>().result, 'allow', 'the service logs in');
  await app.close();
});
