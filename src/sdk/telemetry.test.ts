import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeepaliveTelemetry, settleWithin } from './telemetry.ts';

test('a keepalive carries state, path, setup time, the latest ping RTT and the NAT type once known', () => {
  let clock = 1000;
  const t = new KeepaliveTelemetry({ nowMs: () => clock });
  assert.deepEqual(t.payload({ state: 'connected', path: 'direct', setupMs: 412.6 }), { state: 'connected', path: 'direct', setupMs: 413 });
  assert.equal(t.notePing(1.234), true, 'the first RTT is news');
  clock += 500;
  assert.equal(t.notePing(2.26), true, 'still news: no keepalive carried one yet');
  assert.equal(t.setNatType('full cone'), true, 'so is the NAT type');
  assert.deepEqual(t.payload({ state: 'connected', path: 'direct', setupMs: 413, iceRttMs: 9 }), {
    state: 'connected', path: 'direct', setupMs: 413, rttMs: 2.3, natType: 'full cone',
  });
  assert.equal(t.notePing(1.5), false, 'reported: the next keepalive will do');
  assert.equal(t.setNatType('symmetric'), false, 'reported already; the first verdict stays');
  assert.equal(t.payload({ state: 'connected' }).natType, 'full cone');
});

test('a stale ping RTT gives way to the ICE pair\'s round trip, and without one stays', () => {
  let clock = 0;
  const t = new KeepaliveTelemetry({ nowMs: () => clock, rttFreshMs: 30_000 });
  t.notePing(5);
  clock = 30_000;
  assert.equal(t.payload({ state: 'connected', iceRttMs: 7 }).rttMs, 5);
  clock = 30_001;
  assert.equal(t.payload({ state: 'connected', iceRttMs: 7 }).rttMs, 7);
  assert.equal(t.payload({ state: 'connected' }).rttMs, 5);
});

test('a device, which sends no pings, reports the ICE round trip', () => {
  const t = new KeepaliveTelemetry({ natType: 'open internet' });
  assert.deepEqual(t.payload({ state: 'connected', path: 'relay', iceRttMs: 0.42 }), { state: 'connected', path: 'relay', rttMs: 0.4, natType: 'open internet' });
  assert.equal(t.unreported, false);
});

test('unreported says what one last keepalive before a bye would add', () => {
  const t = new KeepaliveTelemetry();
  assert.equal(t.unreported, false);
  t.payload({ state: 'connected' });
  t.notePing(3);
  assert.equal(t.unreported, true);
  t.payload({ state: 'connected' });
  assert.equal(t.unreported, false);
  t.setNatType('cone');
  assert.equal(t.unreported, true);
  t.payload({ state: 'connected' });
  assert.equal(t.unreported, false);
});

test('settleWithin waits for a promise, a rejection included, or gives up at its bound', async () => {
  await settleWithin(Promise.reject(new Error('x')), 10_000);
  let settled = false;
  await settleWithin(new Promise(() => undefined), 20).then(() => { settled = true; });
  assert.ok(settled);
});
