import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import { SdkError } from './errors.ts';
import { Waiters } from './waiters.ts';

test('a wait ends when its check holds on a poke, on its own failure check, or at its deadline', async () => {
  const clock = fakeClock();
  const w = new Waiters(clock);
  let ready = false;
  let broken: SdkError | undefined = undefined;
  const ok = w.waitFor(() => ready, clock.now() + 1000, 'ready');
  const bad = assert.rejects(w.waitFor(() => false, clock.now() + 1000, 'never', () => broken), { code: 'ICE_FAILED' });
  const late = assert.rejects(w.waitFor(() => false, clock.now() + 500, 'the answer'), { code: 'TIMEOUT', message: /waiting for the answer/ });
  ready = true;
  broken = new SdkError('ICE_FAILED', 'x');
  w.poke();
  await ok;
  await bad;
  await clock.advance(500);
  await late;
  await w.waitFor(() => true, 0, 'already'); // holds at once: no deadline applies
  assert.equal(clock.pending, 0);
});

test('failAll rejects every wait; pokeLater re-checks after a while; close fails them all and every later one', async () => {
  const clock = fakeClock();
  const w = new Waiters(clock);
  const a = assert.rejects(w.waitFor(() => false, clock.now() + 9000, 'a'), { code: 'DEVICE_ERROR' });
  w.failAll(new SdkError('DEVICE_ERROR', 'bad answer'));
  await a;
  let ready = false;
  const b = w.waitFor(() => ready, clock.now() + 9000, 'b');
  ready = true;
  w.pokeLater(100);
  await clock.advance(100);
  await b;
  const c = assert.rejects(w.waitFor(() => false, clock.now() + 9000, 'c'), { code: 'CLOSED' });
  w.pokeLater(100);
  w.close();
  await c;
  await assert.rejects(w.waitFor(() => true, clock.now() + 9000, 'd'), { code: 'CLOSED' });
  assert.equal(clock.pending, 0);
});
