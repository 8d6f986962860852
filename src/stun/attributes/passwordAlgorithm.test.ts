import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PasswordAlgorithm,
  encodePasswordAlgorithm,
  encodePasswordAlgorithms,
  readPasswordAlgorithm,
  readPasswordAlgorithms,
} from './passwordAlgorithm.ts';

const NONE = Buffer.alloc(0);

describe('PASSWORD-ALGORITHM(S)', () => {
  it('encodes the list a server offers, SHA-256 first', () => {
    const value = encodePasswordAlgorithms([
      { algorithm: PasswordAlgorithm.SHA256, params: NONE },
      { algorithm: PasswordAlgorithm.MD5, params: NONE },
    ]);
    assert.equal(value.toString('hex'), '0002000000010000');
    assert.deepEqual(readPasswordAlgorithms(value), [
      { algorithm: 2, params: NONE },
      { algorithm: 1, params: NONE },
    ]);
  });

  it('round-trips parameters, padded to 4 within the list', () => {
    const list = [
      { algorithm: 0x1234, params: Buffer.from('abc') },
      { algorithm: 2, params: NONE },
      { algorithm: 7, params: Buffer.from('12345') },
    ];
    const value = encodePasswordAlgorithms(list);
    assert.equal(value.length, 8 + 4 + 12);
    assert.deepEqual(readPasswordAlgorithms(value), list);
    // The last entry's padding may be left to the attribute's own padding.
    assert.deepEqual(readPasswordAlgorithms(value.subarray(0, value.length - 3)), list);
  });

  it('reads one algorithm', () => {
    assert.deepEqual(readPasswordAlgorithm(encodePasswordAlgorithm({ algorithm: 1, params: NONE })), { algorithm: 1, params: NONE });
    assert.deepEqual(readPasswordAlgorithm(Buffer.from('00090002abcd', 'hex')), { algorithm: 9, params: Buffer.from('abcd', 'hex') });
  });

  it('refuses truncated entries and trailing bytes', () => {
    for (const hex of ['', '0002', '000200', '00020004abcd', '0002000000']) {
      assert.throws(() => readPasswordAlgorithm(Buffer.from(hex, 'hex')), { code: 'STUN_BAD_ATTRIBUTE' }, hex);
    }
    for (const hex of ['0002', '00020000000100', '00020008abcd']) {
      assert.throws(() => readPasswordAlgorithms(Buffer.from(hex, 'hex')), { code: 'STUN_BAD_ATTRIBUTE' }, hex);
    }
  });
});
