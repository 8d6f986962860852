import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseIPv4, parseIPv6 } from '../ip.ts';
import { readAddress, readXorAddress, writeAddressValue, writeXorAddressBytes, type TransportAddress } from './address.ts';

const TID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');

/** A message-shaped buffer (header with cookie and TID) with the value at offset 20. */
function encode(addr: TransportAddress, xor: boolean): Buffer {
  const buf = Buffer.alloc(20 + (addr.family === 4 ? 8 : 20));
  buf.writeUInt32BE(0x2112a442, 4);
  TID.copy(buf, 8);
  writeAddressValue(buf, 20, addr, xor);
  return buf.subarray(20);
}

describe('address attributes', () => {
  it('reads the RFC 5769 XOR-MAPPED-ADDRESS values', () => {
    assert.deepEqual(readXorAddress(Buffer.from('0001a147e112a643', 'hex'), TID), {
      family: 4, address: '192.0.2.1', port: 32853,
    });
    assert.deepEqual(readXorAddress(Buffer.from('0002a1470113a9faa5d3f179bc25f4b5bed2b9d9', 'hex'), TID), {
      family: 6, address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853,
    });
  });

  it('reads a plain MAPPED-ADDRESS and ignores the reserved byte', () => {
    assert.deepEqual(readAddress(Buffer.from('ff010d960a000001', 'hex')), { family: 4, address: '10.0.0.1', port: 3478 });
    assert.deepEqual(readAddress(Buffer.from('00020d96' + '00000000000000000000ffff7f000001', 'hex')), {
      family: 6, address: '::ffff:127.0.0.1', port: 3478,
    });
  });

  it('round-trips any IPv4 or IPv6 address and port, plain and XOR-ed', () => {
    const addr = fc.oneof(
      fc.record({ family: fc.constant(4 as const), address: fc.ipV4(), port: fc.integer({ min: 0, max: 65535 }) }),
      fc.record({ family: fc.constant(6 as const), address: fc.ipV6(), port: fc.integer({ min: 0, max: 65535 }) }),
    );
    fc.assert(
      fc.property(addr, fc.boolean(), (a, xor) => {
        const back = xor ? readXorAddress(encode(a, true), TID) : readAddress(encode(a, false));
        const again = xor ? readXorAddress(encode(back, true), TID) : readAddress(encode(back, false));
        // IPv6 comes back in the form dgram reports (fast-check writes it in many forms).
        const expected = a.family === 4 ? a.address : new SocketAddress({ address: a.address, family: 'ipv6' }).address;
        return back.family === a.family && back.port === a.port && back.address === expected &&
          again.address === back.address;
      }),
      { numRuns: 2000 },
    );
  });

  it('writes the same XOR value from an address held as bytes as from its text, for a message at any offset', () => {
    const addr = fc.oneof(
      fc.record({ family: fc.constant(4 as const), address: fc.ipV4(), port: fc.integer({ min: 0, max: 65535 }) }),
      fc.record({ family: fc.constant(6 as const), address: fc.ipV6(), port: fc.integer({ min: 0, max: 65535 }) }),
    );
    fc.assert(
      fc.property(addr, fc.nat({ max: 40 }), (a, start) => {
        const bytes = Buffer.alloc(16);
        assert.ok(a.family === 4 ? parseIPv4(a.address, bytes, 0) : parseIPv6(a.address, bytes, 0));
        const expected = encode(a, true);
        const msg = Buffer.alloc(start + 20 + expected.length);
        msg.writeUInt32BE(0x2112a442, start + 4);
        TID.copy(msg, start + 8);
        writeXorAddressBytes(msg, start, start + 20, a.family, bytes, 0, a.port);
        assert.deepEqual(msg.subarray(start + 20), expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a bad family with STUN_BAD_ADDRESS_FAMILY', () => {
    for (const family of ['00', '03', 'ff']) {
      assert.throws(() => readAddress(Buffer.from(`00${family}0d960a000001`, 'hex')), { code: 'STUN_BAD_ADDRESS_FAMILY' });
      assert.throws(() => readXorAddress(Buffer.from(`00${family}0d960a000001`, 'hex'), TID), { code: 'STUN_BAD_ADDRESS_FAMILY' });
    }
  });

  it('refuses a length that does not fit the family', () => {
    for (const hex of ['', '0001', '00010d96', '00010d960a00000100000000', '00020d960a000001']) {
      assert.throws(() => readAddress(Buffer.from(hex, 'hex')), { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' }, hex);
    }
  });
});
