import assert from 'node:assert/strict';
import { it } from 'node:test';
import { channelNumberValue, isChannelNumber, readChannelNumber } from './channelNumber.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('CHANNEL-NUMBER is 16 bits then RFFU; 0x4000-0x4FFF are channels', () => {
  assert.equal(readChannelNumber(u32(channelNumberValue(0x4001))), 0x4001);
  assert.equal(readChannelNumber(u32(0x5000ffff)), 0x5000);
  assert.equal(isChannelNumber(0x3fff), false);
  assert.equal(isChannelNumber(0x4fff), true);
  assert.equal(isChannelNumber(0x5000), false);
  assert.throws(() => channelNumberValue(0x5000), { code: 'STUN_BAD_VALUE' });
  assert.throws(() => readChannelNumber(Buffer.alloc(3)), BAD);
});
