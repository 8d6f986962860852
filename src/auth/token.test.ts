import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer, createVerifier } from './token.ts';
import { P2pdError } from '../errors.ts';

const refusedWith = (code: string) => (err: unknown): boolean => err instanceof P2pdError && err.code === code;

test('during a rotation tokens signed with the previous secret verify; without it, or with another secret, they are invalid', async () => {
  const old = await createHs256Signer('old-secret').sign({ sub: 'app_1', role: 'app', devices: ['cam-1'] });
  const fresh = await createHs256Signer('new-secret').sign({ sub: 'cam-1', role: 'device' });
  const rotated = await createVerifier({ secret: 'new-secret', previousSecret: 'old-secret' });
  assert.deepEqual((await rotated.verify(old)).devices, ['cam-1']);
  assert.equal((await rotated.verify(fresh)).role, 'device');
  const onlyNew = await createVerifier({ secret: 'new-secret' });
  await assert.rejects(onlyNew.verify(old), refusedWith('TOKEN_INVALID'));
  const other = await createHs256Signer('third-secret').sign({ sub: 'app_1', role: 'app' });
  await assert.rejects(rotated.verify(other), refusedWith('TOKEN_INVALID'));
  await assert.rejects(rotated.verify('not.a.token'), refusedWith('TOKEN_INVALID'));
});

test('an expired token of the previous secret is TOKEN_EXPIRED, as under the current one', async () => {
  const expired = await createHs256Signer('old-secret').sign({ sub: 'app_1', role: 'app', ttlSec: -10 });
  const rotated = await createVerifier({ secret: 'new-secret', previousSecret: 'old-secret' });
  await assert.rejects(rotated.verify(expired), refusedWith('TOKEN_EXPIRED'));
});
