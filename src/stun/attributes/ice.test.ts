import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readPriority, readTieBreaker } from './ice.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('PRIORITY is 32 bits and the ICE tie-breaker 64', () => {
  assert.equal(readPriority(u32(0x6e0001ff)), 0x6e0001ff);
  assert.equal(readTieBreaker(Buffer.from('932ff9b151263b36', 'hex')), 0x932ff9b151263b36n);
  assert.throws(() => readTieBreaker(Buffer.alloc(4)), BAD);
});
