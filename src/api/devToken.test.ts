import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createVerifier } from '../auth/token.ts';
import { isLoopback, registerDevTokenRoute, type DevTokenReach } from './devToken.ts';
import { createHttpServer } from './server.ts';
import { createLogger } from '../log.ts';

const SECRET = 'generated-at-start';

async function app(): Promise<ReturnType<typeof Fastify>> {
  const a = Fastify();
  registerDevTokenRoute(a, { secret: SECRET, log: pino({ level: 'silent' }) });
  await a.ready();
  return a;
}

test('issues an app token for every device and a device token for the id asked', async () => {
  const a = await app();
  const verifier = await createVerifier({ secret: SECRET });
  const r1 = await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'app' } });
  assert.equal(r1.statusCode, 201);
  const b1 = r1.json() as { token: string; sub: string };
  const c1 = await verifier.verify(b1.token);
  assert.equal(c1.role, 'app');
  assert.deepEqual(c1.devices, ['*']);
  assert.equal(c1.sub, b1.sub);
  const r2 = await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'device', sub: 'cam-1' } });
  assert.equal(r2.statusCode, 201);
  const c2 = await verifier.verify((r2.json() as { token: string }).token);
  assert.deepEqual([c2.sub, c2.role], ['cam-1', 'device']);
  await a.close();
});

test('refuses a device token without an id and ids that are not ids', async () => {
  const a = await app();
  assert.equal((await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'device' } })).statusCode, 400);
  assert.equal((await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'app', sub: 'a/b' } })).statusCode, 400);
  assert.equal((await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'device', sub: 'cam', devices: ['x'] } })).statusCode, 400);
  assert.equal((await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'admin' } })).statusCode, 400);
  await a.close();
});

async function served(reach?: DevTokenReach): Promise<ReturnType<typeof createHttpServer>> {
  const a = createHttpServer({ logger: createLogger('silent'), readiness: [], metrics: async () => ({ contentType: 'text/plain', body: '' }) });
  registerDevTokenRoute(a, { secret: SECRET, log: pino({ level: 'silent' }), ...(reach ? { reach } : {}) });
  await a.ready();
  return a;
}

test('answers loopback callers only: others get 403 DEV_TOKENS_LOOPBACK_ONLY', async () => {
  const a = await served();
  for (const ip of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
    const r = await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'device', sub: 'cam-1' }, remoteAddress: ip });
    assert.equal(r.statusCode, 201, ip);
  }
  for (const ip of ['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.5', '2001:db8::1', '::ffff:7f00:1', '128.0.0.1']) {
    const r = await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'device', sub: 'cam-1' }, remoteAddress: ip });
    assert.equal(r.statusCode, 403, ip);
    assert.equal((r.json() as { error: { code: string } }).error.code, 'DEV_TOKENS_LOOPBACK_ONLY', ip);
    assert.equal(r.body.includes('token"'), false, 'no token in a refusal');
  }
  await a.close();
});

test('--dev-tokens lan answers every caller', async () => {
  const a = await served('lan');
  const r = await a.inject({ method: 'POST', url: '/v1/dev/token', payload: { role: 'app' }, remoteAddress: '10.0.0.5' });
  assert.equal(r.statusCode, 201);
  await a.close();
});

test('isLoopback knows the loopback spellings a socket reports', () => {
  assert.deepEqual(['127.0.0.1', '::1', '::ffff:127.1.2.3'].map(isLoopback), [true, true, true]);
  assert.deepEqual(['10.0.0.1', '::', '0.0.0.0', '::ffff:10.0.0.1', 'fe80::1', undefined].map(isLoopback), [false, false, false, false, false, false]);
});
