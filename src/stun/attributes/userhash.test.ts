import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeUserhash, readUserhash } from './userhash.ts';

describe('USERHASH', () => {
  it('is SHA-256 of username:realm (RFC 8489 Appendix B.1)', () => {
    assert.equal(
      computeUserhash('\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9', 'example.org').toString('hex'),
      '4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704',
    );
  });

  it('reads exactly 32 bytes', () => {
    assert.equal(readUserhash(Buffer.alloc(32, 1)).length, 32);
    assert.throws(() => readUserhash(Buffer.alloc(31)), { code: 'STUN_BAD_ATTRIBUTE' });
    assert.throws(() => readUserhash(Buffer.alloc(33)), { code: 'STUN_BAD_ATTRIBUTE' });
  });
});
