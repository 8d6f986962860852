import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleLongTermRequest, sampleRequest } from '../../testdata/stun/rfc5769.ts';
import { Attr, MessageClass, Method, messageType } from './constants.ts';
import {
  checkFingerprint,
  checkMessageIntegrity,
  checkMessageIntegritySha256,
  longTermKey,
  shortTermKey,
} from './integrity.ts';
import { decodeMessage } from './message.ts';
import { MessageWriter } from './writer.ts';

const TID = Buffer.from('0102030405060708090a0b0c', 'hex');
const REQUEST = messageType(Method.Allocate, MessageClass.Request);

describe('keys', () => {
  it('derives the long-term key as MD5 or SHA-256 of username:realm:password', () => {
    assert.equal(longTermKey('user', 'realm', 'pass').toString('hex'), '8493fbc53ba582fb4c044c456bdc40eb');
    assert.equal(longTermKey('user', 'realm', 'pass', 'sha256').length, 32);
    assert.deepEqual(shortTermKey('p\u00e4ss'), Buffer.from('p\u00e4ss', 'utf8'));
  });
});

describe('MESSAGE-INTEGRITY', () => {
  it('does not modify the caller’s buffer while checking', () => {
    const bytes = Buffer.from(sampleRequest.bytes);
    assert.equal(checkMessageIntegrity(decodeMessage(bytes), shortTermKey(sampleRequest.password)), true);
    assert.deepEqual(bytes, sampleRequest.bytes);
  });

  it('fails when a covered byte changes, or when there is none', () => {
    const v = sampleLongTermRequest;
    const key = longTermKey(v.username, v.realm, v.password);
    for (const at of [1, 9, 25, 60, 100]) {
      const bytes = Buffer.from(v.bytes);
      bytes[at]! ^= 0x01;
      assert.equal(checkMessageIntegrity(decodeMessage(bytes), key), false, `byte ${at}`);
    }
    const bare = decodeMessage(new MessageWriter().reset(REQUEST, TID).finish());
    assert.equal(checkMessageIntegrity(bare, key), false);
    assert.equal(checkMessageIntegritySha256(bare, key), false);
    assert.equal(checkFingerprint(bare), false);
  });

  it('still verifies when ignored attributes follow it (RFC 8489 §14.5)', () => {
    const key = shortTermKey('secret');
    const w = new MessageWriter().reset(REQUEST, TID).addString(Attr.Username, 'alice').addMessageIntegrity(key);
    w.addString(Attr.Software, 'appended later').addFingerprint();
    const msg = decodeMessage(w.finish());
    assert.equal(msg.ignoredAttrCount, 1);
    assert.equal(checkMessageIntegrity(msg, key), true);
    assert.equal(checkFingerprint(msg), true);
  });

  it('verifies both integrities of a message carrying MI and MI-SHA256, truncated or not', () => {
    const key = longTermKey('alice', 'example.org', 'secret', 'sha256');
    for (const length of [16, 20, 24, 28, 32]) {
      const w = new MessageWriter().reset(REQUEST, TID).addString(Attr.Username, 'alice')
        .addMessageIntegrity(key).addMessageIntegritySha256(key, length).addFingerprint();
      const msg = decodeMessage(w.finish());
      assert.equal(checkMessageIntegrity(msg, key), true);
      assert.equal(checkMessageIntegritySha256(msg, key), true, `length ${length}`);
      assert.equal(checkMessageIntegritySha256(msg, shortTermKey('other')), false);
      assert.equal(checkFingerprint(msg), true);
    }
  });
});

describe('FINGERPRINT', () => {
  it('fails when any byte before it changes', () => {
    for (const at of [0, 3, 8, 19, 30, 100]) {
      const bytes = Buffer.from(sampleRequest.bytes);
      bytes[at]! ^= 0x80;
      let ok: boolean;
      try {
        ok = checkFingerprint(decodeMessage(bytes));
      } catch {
        ok = false; // the flip broke the header itself
      }
      assert.equal(ok, false, `byte ${at}`);
    }
  });
});
