import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../auth/token.ts';
import { isSdkError } from './errors.ts';
import { readTokenClaims } from './token.ts';

test('reads the id, role and devices of a token without its key', async () => {
  const token = await createHs256Signer('k').sign({ sub: 'app_1', role: 'app', devices: ['cam-1', '*'], ttlSec: 60 });
  const c = readTokenClaims(token);
  assert.equal(c.sub, 'app_1');
  assert.equal(c.role, 'app');
  assert.deepEqual(c.devices, ['cam-1', '*']);
  assert.ok(c.exp !== undefined && c.exp > Date.now() / 1000);
});

test('a malformed token is AUTH_FAILED', () => {
  for (const bad of ['', 'abc', 'a.b.c', `x.${Buffer.from('{"role":"app"}').toString('base64url')}.y`]) {
    assert.throws(() => readTokenClaims(bad), (e) => isSdkError(e, 'AUTH_FAILED'), bad);
  }
});
