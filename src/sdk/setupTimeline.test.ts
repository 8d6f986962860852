import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SetupTimeline } from './setupTimeline.ts';

test('each step is recorded once, in ms since the start, in setup order', () => {
  let t = 1000;
  const tl = new SetupTimeline(1000, () => t);
  t = 1120.4; tl.mark('answer');
  t = 1010; tl.mark('session');
  t = 2000; tl.mark('answer'); // an ICE restart's answer does not move it
  assert.deepEqual(Object.entries(tl.phases), [['session', 10], ['answer', 120]]);
  tl.mark('signaling', 900);
  assert.equal(tl.phases.signaling, 0, 'never negative');
});
