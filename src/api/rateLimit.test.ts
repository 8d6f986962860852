import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalRateLimiter, sourceKey, tokenKey } from './rateLimit.ts';

test('a bucket of N/s allows a burst of 2N, then one request per 1/N s', () => {
  let now = 1_000_000;
  const l = new LocalRateLimiter({ perSec: 10, nowMs: () => now });
  const burst = Array.from({ length: 25 }, () => l.takeNow('a'));
  assert.equal(burst.filter((w) => w === 0).length, 20);
  assert.ok(burst.slice(20).every((w) => w > 0 && w <= 100), `waits ${burst.slice(20).join(',')}`);
  assert.equal(l.takeNow('b'), 0, 'another key has its own bucket');
  now += 100;
  assert.equal(l.takeNow('a'), 0, 'refilled one after 1/N s');
  assert.ok(l.takeNow('a') > 0);
  now += 2000;
  assert.equal(Array.from({ length: 20 }, () => l.takeNow('a')).filter((w) => w === 0).length, 20, 'full again after 2 s');
});

test('the table stays bounded under a million keys, evicting gradually', () => {
  let now = 0;
  const l = new LocalRateLimiter({ perSec: 1, maxKeys: 1000, nowMs: () => now });
  for (let i = 0; i < 1_000_000; i++) {
    l.takeNow(`k${i}`);
    if (i % 1000 === 0) now += 1;
    assert.ok(l.size <= 1000);
  }
  // A key in use is the most recently used one: strangers' churn evicts others first.
  for (let i = 0; i < 3; i++) l.takeNow('hot');
  for (let i = 0; i < 500; i++) l.takeNow(`x${i}`);
  assert.ok(l.takeNow('hot') > 0, 'the busy key kept its spent budget');
});

test('keys full again go first: a quiet table empties as strangers leave', () => {
  let now = 0;
  const l = new LocalRateLimiter({ perSec: 10, maxKeys: 100_000, nowMs: () => now });
  for (let i = 0; i < 1000; i++) l.takeNow(`k${i}`);
  now += 10_000;
  for (let i = 0; i < 600; i++) l.takeNow(`n${i}`);
  assert.equal(l.size, 600, 'two stale keys leave per new key, well before the cap');
});

test('source keys: IPv4 and mapped IPv4 alike, IPv6 by its /64', () => {
  assert.equal(sourceKey('203.0.113.7'), '203.0.113.7');
  assert.equal(sourceKey('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
});

test('token keys are digests: no token text in a key', () => {
  const t = 'eyJhbGciOiJIUzI1NiJ9.secret.sig';
  assert.equal(tokenKey(t), tokenKey(t));
  assert.notEqual(tokenKey(t), tokenKey(`${t}x`));
  assert.ok(!tokenKey(t).includes('secret'));
  assert.equal(tokenKey(t).length, 22);
});
