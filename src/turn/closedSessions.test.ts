import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClosedSessions } from './closedSessions.ts';

test('remembers a close for its time, then forgets it', () => {
  const c = new ClosedSessions(60);
  c.add('s1', 100);
  assert.equal(c.has('s1', 159), true);
  assert.equal(c.has('s2', 120), false);
  assert.equal(c.has('s1', 160), false);
  c.sweep(161);
  assert.equal(c.size, 0);
});

test('bounded: past its size the oldest close is forgotten, one at a time', () => {
  const c = new ClosedSessions(60, 3);
  for (const id of ['a', 'b', 'c', 'd']) c.add(id, 0);
  assert.equal(c.size, 3);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((id) => c.has(id, 1)), [false, true, true, true]);
});
