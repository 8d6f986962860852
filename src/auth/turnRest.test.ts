import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintTurnRestCredentials, parseTurnRestUsername, turnRestPassword } from './turnRest.ts';

test('credential is base64(HMAC-SHA1(secret, "<expiry>:<sessionId>")) as coturn computes it', () => {
  // echo -n "1698851832:abc" | openssl dgst -sha1 -hmac secret -binary | base64
  assert.equal(turnRestPassword('secret', '1698851832:abc'), 'DKitcGTCXcIjQd8nCJs9rTgE7Xk=');
  const c = mintTurnRestCredentials('secret', 'abc', 1698851832.7);
  assert.deepEqual(c, { username: '1698851832:abc', credential: 'DKitcGTCXcIjQd8nCJs9rTgE7Xk=', expiresAt: 1698851832 });
});

test('mints session credentials as "<expiry>:<sessionId>:<sub>" and session-less ones as "<expiry>::<sub>"', () => {
  assert.equal(mintTurnRestCredentials('s', 'sess-1', 2000000000, 'app-1').username, '2000000000:sess-1', 'a session keeps the public two-field form');
  assert.equal(mintTurnRestCredentials('s', '', 2000000000, 'app-1').username, '2000000000::app-1');
});

test('parses a REST username and refuses expired or foreign ones', () => {
  const now = 1_700_000_000;
  assert.deepEqual(parseTurnRestUsername('2000000000:6f1c-uuid', now), { expiresAt: 2000000000, sessionId: '6f1c-uuid', principal: undefined }, 'the principal of a session is its app, from the store');
  assert.deepEqual(parseTurnRestUsername('2000000000:s1:app-1', now), { expiresAt: 2000000000, sessionId: 's1', principal: 'app-1' });
  assert.deepEqual(parseTurnRestUsername('2000000000::app-1', now), { expiresAt: 2000000000, sessionId: undefined, principal: 'app-1' });
  // A sub may hold ':': everything after the second ':' is the sub.
  assert.deepEqual(parseTurnRestUsername('2000000000:s1:urn:x:y', now), { expiresAt: 2000000000, sessionId: 's1', principal: 'urn:x:y' });
  assert.equal(parseTurnRestUsername('2000000000:s1:', now), undefined);
  assert.equal(parseTurnRestUsername('2000000000:', now), undefined);
  assert.equal(parseTurnRestUsername('1600000000:old', now), undefined);
  assert.equal(parseTurnRestUsername('alice', 0), undefined);
  assert.equal(parseTurnRestUsername('12x:abc', 0), undefined);
  assert.equal(parseTurnRestUsername(':abc', 0), undefined);
});
