import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readUnknownAttributes } from './unknownAttributes.ts';

describe('UNKNOWN-ATTRIBUTES', () => {
  it('reads a list of types, including an odd count', () => {
    assert.deepEqual(readUnknownAttributes(Buffer.from('00317fff0002', 'hex')), [0x0031, 0x7fff, 0x0002]);
    assert.deepEqual(readUnknownAttributes(Buffer.alloc(0)), []);
  });

  it('refuses an odd length', () => {
    assert.throws(() => readUnknownAttributes(Buffer.from('003100', 'hex')), { code: 'STUN_BAD_ATTRIBUTE' });
  });
});
