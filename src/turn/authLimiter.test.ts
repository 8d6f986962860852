import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthLimiter } from './authLimiter.ts';

const limits = { maxFailures: 3, windowSec: 10, challengesPerSec: 2, challengeBurst: 4, maxSources: 1000 };

test('blocks a source after its failures for the rest of the window only', () => {
  const l = new AuthLimiter(limits);
  for (let k = 0; k < 3; k++) l.recordFailure('a', 100);
  assert.equal(l.isBlocked('a', 105), true);
  assert.equal(l.isBlocked('b', 105), false);
  assert.equal(l.isBlocked('a', 110), false);
});

test('challenges: a burst, then a steady rate', () => {
  const l = new AuthLimiter(limits);
  const ok = [1, 2, 3, 4, 5].map(() => l.allowChallenge('a', 0));
  assert.deepEqual(ok, [true, true, true, true, false]);
  assert.equal(l.allowChallenge('a', 0.5), true);
  assert.equal(l.allowChallenge('a', 0.5), false);
});

test('sweeps idle sources', () => {
  const l = new AuthLimiter(limits);
  l.recordFailure('a', 0);
  l.allowChallenge('b', 0);
  l.sweep(100);
  assert.equal(l.size, 0);
});
