import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, errorReason, readErrorCode } from './errorCode.ts';

const value = (hex: string, reason = ''): Buffer => Buffer.concat([Buffer.from(hex, 'hex'), Buffer.from(reason)]);

describe('ERROR-CODE', () => {
  it('reads class, number and reason', () => {
    assert.deepEqual(readErrorCode(value('00000401', 'Unauthenticated')), { code: 401, reason: 'Unauthenticated' });
    assert.deepEqual(readErrorCode(value('00000300')), { code: 300, reason: '' });
    assert.deepEqual(readErrorCode(value('00000663', 'x')), { code: 699, reason: 'x' });
    // Only the low 3 bits of the third byte are the class.
    assert.deepEqual(readErrorCode(value('0000f426')), { code: 438, reason: '' });
  });

  it('refuses a short value, a class outside 3-6 and a number over 99', () => {
    for (const hex of ['', '000004', '00000200', '00000700', '00000464']) {
      assert.throws(() => readErrorCode(value(hex)), { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' }, hex);
    }
  });

  it('refuses a reason that is too long or not UTF-8', () => {
    assert.throws(() => readErrorCode(value('00000400', 'x'.repeat(764))), { code: 'STUN_VALUE_TOO_LONG' });
    assert.equal(readErrorCode(value('00000400', 'x'.repeat(763))).reason.length, 763);
    assert.throws(() => readErrorCode(Buffer.from('00000400c328', 'hex')), { code: 'STUN_BAD_UTF8' });
  });

  it('names the RFC error codes', () => {
    assert.equal(ErrorCode.StaleNonce, 438);
    assert.equal(errorReason(ErrorCode.AllocationQuotaReached), 'Allocation Quota Reached');
    assert.equal(errorReason(499), '');
  });
});
