import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readConnectionId } from './connectionId.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('CONNECTION-ID is 32 bits', () => {
  assert.equal(readConnectionId(u32(0xdeadbeef)), 0xdeadbeef);
  assert.throws(() => readConnectionId(Buffer.alloc(0)), BAD);
});
