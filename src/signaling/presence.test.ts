import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceTracker } from './presence.ts';

test('an unknown device is offline once ready, "don\'t know" before', () => {
  const p = new PresenceTracker({ ready: false });
  assert.equal(p.isDeviceOnline('device_1'), undefined);
  p.set('device_2', true);
  assert.equal(p.isDeviceOnline('device_2'), true);
  p.markReady();
  assert.equal(p.isDeviceOnline('device_1'), false);
});

test('reports changes once and forgets offline devices', () => {
  const p = new PresenceTracker();
  const seen: string[] = [];
  p.onChange((id, online) => seen.push(`${id}:${online}`));
  p.set('d', true);
  p.set('d', true);
  p.set('d', false);
  assert.deepEqual(seen, ['d:true', 'd:false']);
  assert.equal(p.onlineCount, 0);
  assert.equal(p.isDeviceOnline('d'), false);
});
