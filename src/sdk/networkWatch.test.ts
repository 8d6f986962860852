import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import { watchAddresses } from './networkWatch.ts';

test('a changed address is told once, with what came and what went; no change, nothing told', async () => {
  const clock = fakeClock();
  let addresses = ['10.0.0.5', '2001:db8::5'];
  const told: Array<[readonly string[], readonly string[]]> = [];
  const stop = watchAddresses({ list: () => addresses, clock, intervalMs: 1000, onChange: (a, r) => told.push([a, r]) });
  await clock.advance(5000);
  assert.deepEqual(told, []);
  addresses = ['192.168.1.9', '2001:db8::5'];
  await clock.advance(1000);
  assert.deepEqual(told, [[['192.168.1.9'], ['10.0.0.5']]]);
  await clock.advance(5000);
  assert.equal(told.length, 1, 'the new set is the one known now');
  addresses = ['192.168.1.9'];
  await clock.advance(1000);
  assert.deepEqual(told[1], [[], ['2001:db8::5']]);
  stop();
  assert.equal(clock.pending, 0);
});

test('a moment when the addresses cannot be read is no change', async () => {
  const clock = fakeClock();
  let fail = false;
  const told: unknown[] = [];
  watchAddresses({ list: () => { if (fail) throw new Error('EIO'); return ['10.0.0.5']; }, clock, intervalMs: 1000, onChange: (...a) => told.push(a) });
  fail = true;
  await clock.advance(3000);
  fail = false;
  await clock.advance(1000);
  assert.deepEqual(told, []);
});
