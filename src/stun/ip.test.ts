import assert from 'node:assert/strict';
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip.ts';

/** How Node itself (libuv) writes an IPv6 address: the form dgram reports. */
function nodeForm(address: string): string {
  return new SocketAddress({ address, family: 'ipv6' }).address;
}

function v6(s: string): string {
  const buf = Buffer.alloc(16);
  assert.equal(parseIPv6(s, buf, 0), true, s);
  return formatIPv6(buf, 0);
}

describe('IPv4 text', () => {
  it('round-trips dotted quads', () => {
    fc.assert(
      fc.property(fc.ipV4(), (s) => {
        const buf = Buffer.alloc(4);
        return parseIPv4(s, buf, 0) && formatIPv4(buf, 0) === s;
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what node:net refuses', () => {
    const buf = Buffer.alloc(4);
    for (const s of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '-1.2.3.4', '1.2.3.']) {
      assert.equal(parseIPv4(s, buf, 0), false, s);
      assert.equal(isIPv4(s), false, s);
    }
  });
});

describe('IPv6 text', () => {
  it('formats as Node does (zero runs, IPv4-mapped and -compatible tails)', () => {
    assert.equal(v6('::'), '::');
    assert.equal(v6('::1'), '::1');
    assert.equal(v6('0:0:0:0:0:0:0:2'), '::2');
    assert.equal(v6('1::'), '1::');
    assert.equal(v6('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(v6('1:0:2:0:3:0:4:0'), '1:0:2:0:3:0:4:0');
    assert.equal(v6('0:0:0:0:0:ffff:0102:0304'), '::ffff:1.2.3.4');
    assert.equal(v6('::ffff:0:0'), '::ffff:0.0.0.0');
    assert.equal(v6('::1.2.3.4'), '::1.2.3.4');
    assert.equal(v6('64:ff9b::192.0.2.1'), '64:ff9b::c000:201');
    assert.equal(v6('fe80::1%eth0'), 'fe80::1');
  });

  it('agrees with Node for any address', () => {
    fc.assert(
      fc.property(fc.ipV6(), (s) => v6(s) === nodeForm(s)),
      { numRuns: 2000 },
    );
  });

  it('agrees with Node for addresses rich in zeros', () => {
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const buf = Buffer.alloc(16);
        groups.forEach((g, k) => buf.writeUInt16BE(g, 2 * k));
        const text = groups.map((g) => g.toString(16)).join(':');
        return formatIPv6(buf, 0) === nodeForm(text) && v6(text) === nodeForm(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what node:net refuses', () => {
    const buf = Buffer.alloc(16);
    for (const s of [
      '', ':', ':::', '1:2', '1::2::3', ':1::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::',
      '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '1.2.3.4', '%eth0', '::1%', '1:2:3:4:5:6:7:8::', '::1:',
    ]) {
      assert.equal(parseIPv6(s, buf, 0), false, s);
      assert.equal(isIPv6(s), false, s);
    }
  });
});
