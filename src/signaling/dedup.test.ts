import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deduplicator } from './dedup.ts';

test('a (sender, msgId) pair counts once within the window, again after it', () => {
  let now = 1000;
  const d = new Deduplicator({ windowMs: 100, nowMs: () => now });
  assert.equal(d.record('app_1', 'm1'), true);
  assert.equal(d.record('app_1', 'm1'), false);
  assert.equal(d.record('app_2', 'm1'), true, 'msgIds are per sender');
  assert.ok(d.has('app_1', 'm1'));
  now += 100;
  assert.ok(!d.has('app_1', 'm1'));
  assert.equal(d.record('app_1', 'm1'), true);
});

test('stays bounded, dropping the oldest first', () => {
  const d = new Deduplicator({ maxEntries: 3 });
  for (const id of ['a', 'b', 'c', 'd']) d.record('x', id);
  assert.equal(d.size, 3);
  assert.ok(!d.has('x', 'a'));
  assert.ok(d.has('x', 'd'));
});
