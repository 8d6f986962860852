import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintTurnRestCredentials, parseTurnRestUsername, turnRestPassword } from './turnRest.ts';

test('credential is base64(HMAC-SHA1(secret, "<expiry>:<sessionId>")) as coturn computes it', () => {
  // echo -n "1698851832:abc" | openssl dgst -sha1 -hmac secret -binary | base64
  assert.equal(turnRestPassword('secret', '1698851832:abc'), 'DKitcGTCXcIjQd8nCJs9rTgE7Xk=');
  const c = mintTurnRestCredentials('secret', 'abc', 1698851832.7);
  assert.deepEqual(c, { username: '1698851832:abc', credential: 'DKitcGTCXcIjQd8nCJs9rTgE7Xk=', expiresAt: 1698851832 });
});

test('parses a REST username and refuses expired or foreign ones', () => {
  assert.deepEqual(parseTurnRestUsername('2000000000:6f1c-uuid', 1_700_000_000), { expiresAt: 2000000000, sessionId: '6f1c-uuid' });
  assert.deepEqual(parseTurnRestUsername('2000000000:a:b', 1_700_000_000)?.sessionId, 'a:b');
  assert.equal(parseTurnRestUsername('1600000000:old', 1_700_000_000), undefined);
  assert.equal(parseTurnRestUsername('alice', 0), undefined);
  assert.equal(parseTurnRestUsername('12x:abc', 0), undefined);
  assert.equal(parseTurnRestUsername(':abc', 0), undefined);
});
