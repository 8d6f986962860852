import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeRequestValue, readChangeRequest } from './changeRequest.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

describe('CHANGE-REQUEST', () => {
  it('reads the change-IP (0x4) and change-port (0x2) flags', () => {
    assert.deepEqual(readChangeRequest(u32(0x6)), { changeIp: true, changePort: true });
    assert.deepEqual(readChangeRequest(u32(0x4)), { changeIp: true, changePort: false });
    assert.deepEqual(readChangeRequest(u32(0x2)), { changeIp: false, changePort: true });
    assert.deepEqual(readChangeRequest(u32(0xfffffff9)), { changeIp: false, changePort: false });
  });

  it('encodes the flags', () => {
    assert.equal(changeRequestValue({ changeIp: true, changePort: false }), 4);
    assert.equal(changeRequestValue({ changeIp: true, changePort: true }), 6);
  });

  it('refuses a value that is not 4 bytes', () => {
    assert.throws(() => readChangeRequest(Buffer.alloc(2)), { code: 'STUN_BAD_ATTRIBUTE' });
    assert.throws(() => readChangeRequest(Buffer.alloc(8)), { code: 'STUN_BAD_ATTRIBUTE' });
  });
});
