import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Attr } from '../constants.ts';
import { charCount, readNonce, readRealm, readSoftware, readUsername } from './text.ts';

describe('text attributes', () => {
  it('reads UTF-8', () => {
    assert.equal(readUsername(Buffer.from('\u30de\u30c8\u30ea\u30c3\u30af\u30b9')), '\u30de\u30c8\u30ea\u30c3\u30af\u30b9');
    assert.equal(readRealm(Buffer.from('example.org')), 'example.org');
    assert.equal(readNonce(Buffer.alloc(0)), '');
    assert.equal(readSoftware(Buffer.from('p2pd \u{1F680}')), 'p2pd \u{1F680}');
  });

  it('accepts USERNAME up to 512 bytes and REALM, NONCE, SOFTWARE up to 763', () => {
    assert.equal(readUsername(Buffer.alloc(512, 0x61)).length, 512);
    assert.throws(() => readUsername(Buffer.alloc(513, 0x61)), { code: 'STUN_VALUE_TOO_LONG', attrType: Attr.Username });
    for (const read of [readRealm, readNonce, readSoftware]) {
      assert.equal(read(Buffer.alloc(763, 0x61)).length, 763);
      assert.throws(() => read(Buffer.alloc(764, 0x61)), { name: 'StunDecodeError', code: 'STUN_VALUE_TOO_LONG' });
    }
  });

  it('refuses invalid UTF-8 instead of replacing it', () => {
    for (const hex of ['ff', 'c328', 'e282', 'eda080', 'c0af']) {
      assert.throws(() => readUsername(Buffer.from(hex, 'hex')), { code: 'STUN_BAD_UTF8' }, hex);
    }
  });

  it('counts characters, not UTF-16 units', () => {
    assert.equal(charCount('a\u{1F600}\u00e9'), 3);
    assert.equal(charCount('\ud800x'), 2); // a lone surrogate counts as one
  });
});
