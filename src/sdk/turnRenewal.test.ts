import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { renewalDelayMs, renewalMarginMs, turnExpiryMs } from './turnRenewal.ts';

const turn = (expirySec: number, url = 'turn:203.0.113.1:3478?transport=udp') => ({ urls: [url], username: `${expirySec}:sess-1`, credential: 'x' });

test('the earliest TURN expiry counts; STUN entries and usernames without an expiry do not', () => {
  assert.equal(turnExpiryMs([{ urls: 'stun:203.0.113.1:3478' }, turn(2_000_000_000), turn(1_900_000_000, 'turns:t.example:443')]), 1_900_000_000_000);
  assert.equal(turnExpiryMs([{ urls: ['turn:203.0.113.1'], username: 'alice', credential: 'p' }]), undefined);
  assert.equal(turnExpiryMs([{ urls: 'stun:x' }]), undefined);
  assert.equal(turnExpiryMs([]), undefined);
});

test('renewal comes a fifth of the lifetime ahead, at least 2 s and at most 10 min', () => {
  const now = 1_800_000_000_000;
  assert.equal(renewalDelayMs([turn(now / 1000 + 86_400)], now), 86_400_000 - 600_000, 'a day: 10 min ahead');
  assert.equal(renewalDelayMs([turn(now / 1000 + 60)], now), 48_000, 'a minute: 12 s ahead');
  assert.equal(renewalDelayMs([turn(now / 1000 + 1)], now), 0, 'about to expire: now');
  assert.equal(renewalDelayMs([turn(now / 1000 - 60)], now), 0, 'expired: now');
  assert.equal(renewalDelayMs([{ urls: 'stun:x' }], now), undefined);
});

test('for any lifetime, the renewal is due before the expiry and never in the past', () => {
  fc.assert(fc.property(fc.integer({ min: -10_000_000, max: 40 * 86_400_000 }), (left) => {
    const now = 1_800_000_000_000;
    const expirySec = Math.floor((now + left) / 1000);
    const delay = renewalDelayMs([turn(expirySec)], now) as number;
    assert.ok(delay >= 0);
    if (expirySec * 1000 - now > 2000) assert.ok(now + delay < expirySec * 1000, `due ${delay} ms, expiry in ${expirySec * 1000 - now} ms`);
    assert.ok(renewalMarginMs(left) >= 2000);
  }));
});

test('random usernames never throw and never give a number that is not a time', () => {
  fc.assert(fc.property(fc.string(), fc.string(), (username, url) => {
    const e = turnExpiryMs([{ urls: [`turn:${url}`], username, credential: 'c' }]);
    assert.ok(e === undefined || (Number.isInteger(e) && e > 0));
  }));
});
