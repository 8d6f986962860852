import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readLifetime } from './lifetime.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('LIFETIME is 32 bits of seconds', () => {
  assert.equal(readLifetime(u32(600)), 600);
  assert.throws(() => readLifetime(Buffer.alloc(2)), BAD);
});
