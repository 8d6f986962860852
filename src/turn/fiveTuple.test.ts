import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4ToNumber, numberToIpv4, peerKey4, udpTupleKey } from './fiveTuple.ts';

test('parses dotted quads to numbers and back', () => {
  assert.equal(ipv4ToNumber('0.0.0.0'), 0);
  assert.equal(ipv4ToNumber('127.0.0.1'), 0x7f000001);
  assert.equal(ipv4ToNumber('255.255.255.255'), 0xffffffff);
  assert.equal(numberToIpv4(0xc0a80101), '192.168.1.1');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', 'a.b.c.d', '1.2.3.4 ', '::1', '1.2.3.1234']) {
    assert.equal(ipv4ToNumber(bad), -1, bad);
  }
});

test('5-tuple keys are exact doubles and distinct per slot, address and port', () => {
  const k = udpTupleKey(31, 0xffffffff, 65535);
  assert.ok(Number.isSafeInteger(k));
  const keys = new Set([udpTupleKey(0, 1, 2), udpTupleKey(1, 1, 2), udpTupleKey(0, 2, 2), udpTupleKey(0, 1, 3)]);
  assert.equal(keys.size, 4);
  assert.equal(peerKey4(0x7f000001, 80), 0x7f000001 * 65536 + 80);
});
