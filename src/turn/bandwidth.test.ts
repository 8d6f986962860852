import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './bandwidth.ts';

test('passes the rate plus one burst, drops the rest, refills with time', () => {
  let now = 0;
  const b = new TokenBucket(800_000, () => now); // 100 kB/s, burst max(20 kB, 16 kB)
  let passed = 0;
  for (let ms = 0; ms < 10_000; ms += 10) {
    now = ms;
    for (let k = 0; k < 2; k++) if (b.take(1000)) passed += 1000; // offered: 200 kB/s
  }
  const expected = 100_000 * 10 + 20_000;
  assert.ok(Math.abs(passed - expected) <= 2000, `${passed} vs ${expected}`);
});

test('a datagram larger than what is left waits for tokens rather than borrowing', () => {
  let now = 0;
  const b = new TokenBucket(8_000, () => now); // 1 kB/s, burst 16 kB
  assert.equal(b.take(16 * 1024), true);
  assert.equal(b.take(1), false);
  now = 1000;
  assert.equal(b.take(1000), true);
  assert.equal(b.take(100), false);
});

test('takeUpTo hands out what is there, at most the asked amount, and shares the rate with take', () => {
  let now = 0;
  const b = new TokenBucket(800_000, () => now); // 100 kB/s, burst 20 kB
  assert.equal(b.takeUpTo(16 * 1024), 16 * 1024);
  assert.equal(b.takeUpTo(16 * 1024), 20_000 - 16 * 1024);
  assert.equal(b.takeUpTo(16 * 1024), 0);
  assert.equal(b.take(1), false);
  now = 100; // 10 kB more
  assert.equal(b.takeUpTo(4000), 4000);
  assert.equal(b.take(6000), true);
  assert.equal(b.take(100), false);
});
