import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FixedHeaderScanner } from './packetGuard.ts';
import { PreauthLimiter, sourceKey } from './preauth.ts';

/** MQTT 3.1.1 §2.2.3 Remaining Length encoding. */
function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
const packet = (type: number, bodyBytes: number): Buffer => Buffer.concat([Buffer.from([type << 4, ...remainingLength(bodyBytes)]), Buffer.alloc(bodyBytes)]);

test('passes a CONNECT and packets within their limits, split at any byte', () => {
  const stream = Buffer.concat([packet(1, 300), packet(3, 5000), packet(12, 0), packet(3, 127), packet(3, 128)]);
  for (const step of [1, 2, 3, 7, 1000, stream.length]) {
    const s = new FixedHeaderScanner(16 * 1024, 8192);
    for (let i = 0; i < stream.length; i += step) assert.equal(s.feed(stream.subarray(i, i + step)), undefined, `step ${step}`);
  }
});

test('refuses a CONNECT announcing 200 MiB as soon as its length bytes say so', () => {
  const header = Buffer.from([0x10, ...remainingLength(200 * 1024 * 1024)]);
  const s = new FixedHeaderScanner(16 * 1024, 65536);
  assert.equal(header.length, 5);
  assert.equal(s.feed(header.subarray(0, 4)), undefined, 'the low length bytes of 200 MiB are all zero');
  assert.equal(s.feed(header.subarray(4)), 'connect_too_large', 'known at the last length byte, before any body');
  assert.equal(new FixedHeaderScanner(16 * 1024, 65536).feed(packet(1, 16 * 1024 + 1)), 'connect_too_large');
  assert.equal(new FixedHeaderScanner(16 * 1024, 65536).feed(packet(1, 16 * 1024)), undefined);
});

test('refuses a later packet above the packet limit, a first packet that is not CONNECT, and a fifth length byte', () => {
  assert.equal(new FixedHeaderScanner(1024, 4096).feed(Buffer.concat([packet(1, 10), packet(3, 4097)])), 'packet_too_large');
  assert.equal(new FixedHeaderScanner(1024, 4096).feed(packet(3, 10)), 'bad_header');
  assert.equal(new FixedHeaderScanner(1024, 1 << 30).feed(Buffer.concat([packet(1, 10), Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80])])), 'bad_header');
});

test('pre-login slots: a source holds at most its maximum, released once each; IPv6 counts per /64', () => {
  const limiter = new PreauthLimiter(2);
  const a = limiter.acquire('192.0.2.1');
  const b = limiter.acquire('::ffff:192.0.2.1');
  assert.ok(a && b);
  assert.equal(limiter.acquire('192.0.2.1'), undefined);
  assert.ok(limiter.acquire('192.0.2.2'));
  a();
  a();
  assert.equal(limiter.heldBy('192.0.2.1'), 1);
  assert.ok(limiter.acquire('192.0.2.1'));
  assert.equal(sourceKey('2001:db8:0:1::5'), sourceKey('2001:DB8:0:1:ffff:1:2:3'));
  assert.notEqual(sourceKey('2001:db8:0:1::5'), sourceKey('2001:db8:0:2::5'));
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
});

test('random bytes, split anywhere, never pass a packet above its limit and never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 1, max: 64 }), (bytes, step) => {
    const s = new FixedHeaderScanner(512, 1024);
    let verdict: string | undefined;
    for (let i = 0; i < bytes.length && verdict === undefined; i += step) verdict = s.feed(Buffer.from(bytes.subarray(i, i + step)));
    assert.ok(verdict === undefined || ['connect_too_large', 'packet_too_large', 'bad_header'].includes(verdict));
  }), { numRuns: 2000 });
  // A well-formed stream of random packets is judged exactly by its announced sizes.
  fc.assert(fc.property(fc.integer({ min: 0, max: 600 }), fc.array(fc.tuple(fc.integer({ min: 2, max: 14 }), fc.integer({ min: 0, max: 1500 })), { maxLength: 8 }), (connectBytes, rest) => {
    const stream = Buffer.concat([packet(1, connectBytes), ...rest.map(([type, n]) => packet(type, n))]);
    const expected = connectBytes > 512 ? 'connect_too_large' : rest.some(([, n]) => n > 1024) ? 'packet_too_large' : undefined;
    assert.equal(new FixedHeaderScanner(512, 1024).feed(stream), expected);
  }), { numRuns: 500 });
});
