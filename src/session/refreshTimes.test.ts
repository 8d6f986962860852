import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RefreshTimes } from './refreshTimes.ts';

test('a refresh is due at first, then again only once the interval has passed', () => {
  const t = new RefreshTimes();
  assert.equal(t.due('s1', 1000, 500), true);
  assert.equal(t.due('s1', 1400, 500), false);
  assert.equal(t.due('s2', 1400, 500), true);
  assert.equal(t.due('s1', 1500, 500), true);
  assert.equal(t.due('s1', 1999, 500), false);
});

test('it holds at most max sessions, forgetting the one refreshed longest ago', () => {
  const t = new RefreshTimes(3);
  for (const [i, id] of ['a', 'b', 'c'].entries()) t.due(id, i, 100);
  assert.equal(t.due('a', 50, 100), false);
  t.due('d', 60, 100);
  assert.equal(t.size, 3);
  // 'a' was refreshed first and is gone: due again; 'b' and 'c' are still remembered.
  assert.equal(t.due('a', 70, 100), true);
  assert.equal(t.due('c', 70, 100), false);
});
