import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVerifier } from '../auth/token.ts';
import { P2pdError } from '../errors.ts';
import { mintToken, TOKEN_HELP } from './token.ts';

test('mints an app token the server verifies, with its devices and ttl', async () => {
  const t = await mintToken(['--sub', 'app_1', '--role', 'app', '--devices', 'cam-1, cam-2', '--ttl', '120', '--jwt-secret', 's3cret'], {});
  const claims = await (await createVerifier({ secret: 's3cret' })).verify(t);
  assert.equal(claims.sub, 'app_1');
  assert.equal(claims.role, 'app');
  assert.deepEqual(claims.devices, ['cam-1', 'cam-2']);
  assert.ok(Math.abs(claims.exp - (Date.now() / 1000 + 120)) < 5);
});

test('takes the secret from P2PD_JWT_SECRET; * allows any device', async () => {
  const t = await mintToken(['--sub=app_2', '--role=app', '--devices=*'], { P2PD_JWT_SECRET: 'env-secret' });
  assert.deepEqual((await (await createVerifier({ secret: 'env-secret' })).verify(t)).devices, ['*']);
  const d = await mintToken(['--sub', 'cam-1', '--role', 'device'], { P2PD_JWT_SECRET: 'env-secret' });
  assert.equal((await (await createVerifier({ secret: 'env-secret' })).verify(d)).role, 'device');
});

test('refuses missing or bad options with stable codes', async () => {
  const refuses = (argv: string[], code: string) => assert.rejects(mintToken(argv, {}), (e: unknown) => e instanceof P2pdError && e.code === code, argv.join(' '));
  await refuses(['--role', 'app', '--jwt-secret', 'x'], 'CONFIG_MISSING_VALUE');
  await refuses(['--sub', 'a', '--jwt-secret', 'x'], 'CONFIG_MISSING_VALUE');
  await refuses(['--sub', 'a', '--role', 'app'], 'CONFIG_MISSING_VALUE');
  await refuses(['--sub', 'a b', '--role', 'app', '--jwt-secret', 'x'], 'CONFIG_INVALID_VALUE');
  await refuses(['--sub', 'a', '--role', 'admin', '--jwt-secret', 'x'], 'CONFIG_INVALID_VALUE');
  await refuses(['--sub', 'a', '--role', 'app', '--ttl', '0', '--jwt-secret', 'x'], 'CONFIG_INVALID_VALUE');
  await refuses(['--sub', 'a', '--role', 'device', '--devices', 'b', '--jwt-secret', 'x'], 'CONFIG_CONFLICT');
  await refuses(['--sub', 'a', '--role', 'app', '--nope', '--jwt-secret', 'x'], 'CONFIG_UNKNOWN_OPTION');
  assert.match(TOKEN_HELP, /--devices/);
});

test('mints an operator token: verifyAny reads it, the client verifier refuses it', async () => {
  const t = await mintToken(['--sub', 'ops', '--role', 'operator', '--jwt-secret', 's3cret'], {});
  const verifier = await createVerifier({ secret: 's3cret' });
  assert.deepEqual({ ...(await verifier.verifyAny(t)), exp: 0 }, { sub: 'ops', role: 'operator', exp: 0 });
  await assert.rejects(verifier.verify(t), (e: unknown) => e instanceof P2pdError && e.code === 'TOKEN_INVALID');
  await assert.rejects(mintToken(['--sub', 'ops', '--role', 'operator', '--devices', '*', '--jwt-secret', 'x'], {}),
    (e: unknown) => e instanceof P2pdError && e.code === 'CONFIG_CONFLICT');
});
