import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createVerifier } from '../auth/token.ts';
import { registerDevTokenRoute } from './devToken.ts';

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
