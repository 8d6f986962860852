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

test('recordFailure tells when the budget is used up, and a block from the node holds until its end', () => {
  const l = new AuthLimiter(limits);
  assert.equal(l.recordFailure('a', 100), 0);
  assert.equal(l.recordFailure('a', 100), 0);
  assert.equal(l.recordFailure('a', 100), 110);
  l.block('b', 108, 101);
  assert.equal(l.isBlocked('b', 107), true);
  assert.equal(l.isBlocked('b', 108), false);
});

test('a full table forgets the least recently active source, one at a time (no wholesale clear)', () => {
  const l = new AuthLimiter({ ...limits, maxSources: 3 });
  for (let k = 0; k < 3; k++) l.recordFailure('blocked', 0);
  l.allowChallenge('x', 0);
  l.allowChallenge('y', 0);
  l.recordFailure('blocked', 0); // touched last: the most recently active
  l.allowChallenge('z', 0);
  assert.equal(l.size, 3);
  assert.equal(l.isBlocked('blocked', 1), true, 'the active blocked source is kept');
  l.allowChallenge('w', 0);
  assert.equal(l.size, 3);
  assert.equal(l.isBlocked('blocked', 1), true);
});
