import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonceIssuer } from './nonce.ts';

const key = Buffer.alloc(32, 1);

test('a nonce checks out for its IP until it expires, then is stale', () => {
  const n = new NonceIssuer(key, 600);
  const nonce = n.issue('192.0.2.1', 1000);
  assert.match(nonce, /^obMatJos2gAAA[A-Za-z0-9_-]{22}$/);
  assert.equal(n.check(nonce, '192.0.2.1', 1000), 'ok');
  assert.equal(n.check(nonce, '192.0.2.1', 1600), 'ok');
  assert.equal(n.check(nonce, '192.0.2.1', 1601), 'stale');
  assert.equal(n.check(nonce, '192.0.2.2', 1000), 'stale', 'bound to the source address');
});

test('forged, truncated or foreign nonces are stale', () => {
  const n = new NonceIssuer(key, 600);
  const nonce = n.issue('::1', 0);
  const other = new NonceIssuer(Buffer.alloc(32, 2), 600);
  assert.equal(other.check(nonce, '::1', 0), 'stale');
  assert.equal(n.check(nonce.slice(0, -1), '::1', 0), 'stale');
  const flipped = nonce.slice(0, 20) + (nonce[20] === 'A' ? 'B' : 'A') + nonce.slice(21);
  assert.equal(n.check(flipped, '::1', 0), 'stale');
  assert.equal(n.check('', '::1', 0), 'stale');
  assert.equal(n.check('x'.repeat(35), '::1', 0), 'stale');
});
