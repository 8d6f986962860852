import assert from 'node:assert/strict';
import { it } from 'node:test';
import { addressFamilyValue, readAddressFamily } from './addressFamily.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('REQUESTED-ADDRESS-FAMILY is 0x01 or 0x02 in the first byte', () => {
  assert.equal(readAddressFamily(u32(addressFamilyValue(4))), 4);
  assert.equal(readAddressFamily(u32(addressFamilyValue(6))), 6);
  assert.throws(() => readAddressFamily(Buffer.from('03000000', 'hex')), { code: 'STUN_BAD_ADDRESS_FAMILY' });
  assert.throws(() => readAddressFamily(Buffer.from('01', 'hex')), BAD);
});
