import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  TRANSACTION_ID,
  rfc8489Sha256Request,
  sampleIPv4Response,
  sampleIPv6Response,
  sampleLongTermRequest,
  sampleRequest,
} from '../../testdata/stun/rfc5769.ts';
import { readXorAddress } from './attributes/address.ts';
import { readTieBreaker, readPriority } from './attributes/ice.ts';
import { PasswordAlgorithm, encodePasswordAlgorithm, readPasswordAlgorithm } from './attributes/passwordAlgorithm.ts';
import { readNonce, readRealm, readSoftware, readUsername } from './attributes/text.ts';
import { computeUserhash, readUserhash } from './attributes/userhash.ts';
import { Attr, MessageClass, Method, messageType } from './constants.ts';
import {
  checkFingerprint,
  checkMessageIntegrity,
  checkMessageIntegritySha256,
  longTermKey,
  shortTermKey,
} from './integrity.ts';
import { attrValue, decodeMessage, findAttr, type StunMessage } from './message.ts';
import { MessageWriter } from './writer.ts';

function value(msg: StunMessage, type: number): Buffer {
  const i = findAttr(msg, type);
  assert.ok(i >= 0, `attribute 0x${type.toString(16)} present`);
  return attrValue(msg, i);
}

/** Copies the padding bytes of `vector` into the message written so far (same layout). */
function copyPadding(w: MessageWriter, vector: Buffer): void {
  const view = w.finish();
  const msg = decodeMessage(view);
  for (let i = 0; i < msg.attrCount; i++) {
    const end = msg.attrOffsets[i]! + msg.attrLengths[i]!;
    vector.copy(view, end, end, (end + 3) & ~3);
  }
}

/** A copy with padding, MESSAGE-INTEGRITY and FINGERPRINT values zeroed. */
function withoutPaddingAndChecks(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  const msg = decodeMessage(out);
  for (let i = 0; i < msg.attrCount; i++) {
    const start = msg.attrOffsets[i]!;
    const end = start + msg.attrLengths[i]!;
    out.fill(0, end, (end + 3) & ~3);
    if (msg.attrTypes[i] === Attr.MessageIntegrity || msg.attrTypes[i] === Attr.Fingerprint) out.fill(0, start, end);
  }
  return out;
}

const BINDING_REQUEST = messageType(Method.Binding, MessageClass.Request);
const BINDING_SUCCESS = messageType(Method.Binding, MessageClass.SuccessResponse);

describe('RFC 5769 §2.1 sample request', () => {
  const v = sampleRequest;
  const key = shortTermKey(v.password);

  it('decodes every attribute', () => {
    const msg = decodeMessage(v.bytes);
    assert.equal(msg.type, BINDING_REQUEST);
    assert.equal(msg.method, Method.Binding);
    assert.equal(msg.cls, MessageClass.Request);
    assert.deepEqual(msg.transactionId, TRANSACTION_ID);
    assert.deepEqual(Array.from(msg.attrTypes.subarray(0, msg.attrCount)), [
      Attr.Software, Attr.Priority, Attr.IceControlled, Attr.Username, Attr.MessageIntegrity, Attr.Fingerprint,
    ]);
    assert.equal(readSoftware(value(msg, Attr.Software)), v.software);
    assert.equal(readPriority(value(msg, Attr.Priority)), v.priority);
    assert.equal(readTieBreaker(value(msg, Attr.IceControlled)), v.tieBreaker);
    assert.equal(readUsername(value(msg, Attr.Username)), v.username);
  });

  it('verifies MESSAGE-INTEGRITY and FINGERPRINT', () => {
    const msg = decodeMessage(v.bytes);
    assert.equal(checkMessageIntegrity(msg, key), true);
    assert.equal(checkMessageIntegrity(msg, shortTermKey('wrong')), false);
    assert.equal(checkFingerprint(msg), true);
  });

  it('is reproduced byte for byte by the writer', () => {
    const w = new MessageWriter();
    w.reset(BINDING_REQUEST, TRANSACTION_ID)
      .addString(Attr.Software, v.software)
      .addUint32(Attr.Priority, v.priority)
      .addUint64(Attr.IceControlled, v.tieBreaker)
      .addString(Attr.Username, v.username);
    copyPadding(w, v.bytes);
    w.addMessageIntegrity(key).addFingerprint();
    assert.deepEqual(w.toBuffer(), v.bytes);
  });

  it('written with zero padding, matches the vector with its padding zeroed', () => {
    const w = new MessageWriter();
    w.reset(BINDING_REQUEST, TRANSACTION_ID)
      .addString(Attr.Software, v.software)
      .addUint32(Attr.Priority, v.priority)
      .addUint64(Attr.IceControlled, v.tieBreaker)
      .addString(Attr.Username, v.username)
      .addMessageIntegrity(key)
      .addFingerprint();
    const msg = decodeMessage(w.finish());
    assert.equal(checkMessageIntegrity(msg, key), true);
    assert.equal(checkFingerprint(msg), true);
    assert.deepEqual(withoutPaddingAndChecks(w.finish()), withoutPaddingAndChecks(v.bytes));
  });
});

for (const [name, v] of [
  ['§2.2 sample IPv4 response', sampleIPv4Response],
  ['§2.3 sample IPv6 response', sampleIPv6Response],
] as const) {
  describe(`RFC 5769 ${name}`, () => {
    const key = shortTermKey(v.password);

    it('decodes SOFTWARE and XOR-MAPPED-ADDRESS', () => {
      const msg = decodeMessage(v.bytes);
      assert.equal(msg.type, BINDING_SUCCESS);
      assert.deepEqual(msg.transactionId, TRANSACTION_ID);
      assert.equal(readSoftware(value(msg, Attr.Software)), v.software);
      assert.deepEqual(readXorAddress(value(msg, Attr.XorMappedAddress), msg.transactionId), v.mapped);
    });

    it('verifies MESSAGE-INTEGRITY and FINGERPRINT', () => {
      const msg = decodeMessage(v.bytes);
      assert.equal(checkMessageIntegrity(msg, key), true);
      assert.equal(checkFingerprint(msg), true);
    });

    it('is reproduced byte for byte by the writer', () => {
      const w = new MessageWriter();
      w.reset(BINDING_SUCCESS, TRANSACTION_ID)
        .addString(Attr.Software, v.software)
        .addXorAddress(Attr.XorMappedAddress, v.mapped);
      copyPadding(w, v.bytes);
      w.addMessageIntegrity(key).addFingerprint();
      assert.deepEqual(w.toBuffer(), v.bytes);
    });
  });
}

describe('RFC 5769 §2.4 sample request with long-term authentication', () => {
  const v = sampleLongTermRequest;
  const key = longTermKey(v.username, v.realm, v.password, 'md5');

  it('decodes USERNAME, NONCE and REALM', () => {
    const msg = decodeMessage(v.bytes);
    assert.equal(msg.type, BINDING_REQUEST);
    assert.deepEqual(msg.transactionId, v.transactionId);
    assert.equal(readUsername(value(msg, Attr.Username)), v.username);
    assert.equal(readNonce(value(msg, Attr.Nonce)), v.nonce);
    assert.equal(readRealm(value(msg, Attr.Realm)), v.realm);
  });

  it('verifies MESSAGE-INTEGRITY with the MD5 long-term key and has no FINGERPRINT', () => {
    const msg = decodeMessage(v.bytes);
    assert.equal(checkMessageIntegrity(msg, key), true);
    assert.equal(checkMessageIntegrity(msg, longTermKey(v.username, v.realm, 'thematrix')), false);
    assert.equal(msg.fingerprintIndex, -1);
    assert.equal(checkFingerprint(msg), false);
  });

  it('is reproduced byte for byte by the writer', () => {
    const w = new MessageWriter();
    w.reset(BINDING_REQUEST, v.transactionId)
      .addString(Attr.Username, v.username)
      .addString(Attr.Nonce, v.nonce)
      .addString(Attr.Realm, v.realm)
      .addMessageIntegrity(key);
    assert.deepEqual(w.toBuffer(), v.bytes);
  });
});

describe('RFC 8489 Appendix B.1 request with SHA-256 long-term authentication', () => {
  const v = rfc8489Sha256Request;
  const key = longTermKey(v.username, v.realm, v.password, 'sha256');

  it('decodes USERHASH, NONCE, REALM and PASSWORD-ALGORITHM', () => {
    const msg = decodeMessage(v.bytes);
    assert.deepEqual(readUserhash(value(msg, Attr.Userhash)), computeUserhash(v.username, v.realm));
    assert.equal(readNonce(value(msg, Attr.Nonce)), v.nonce);
    assert.equal(readRealm(value(msg, Attr.Realm)), v.realm);
    const algo = readPasswordAlgorithm(value(msg, Attr.PasswordAlgorithm));
    assert.equal(algo.algorithm, PasswordAlgorithm.SHA256);
    assert.equal(algo.params.length, 0);
  });

  it('verifies MESSAGE-INTEGRITY-SHA256 with the SHA-256 long-term key', () => {
    const msg = decodeMessage(v.bytes);
    assert.equal(msg.integrityIndex, -1);
    assert.equal(checkMessageIntegritySha256(msg, key), true);
    assert.equal(checkMessageIntegritySha256(msg, longTermKey(v.username, v.realm, v.password, 'md5')), false);
  });

  it('is reproduced byte for byte by the writer', () => {
    const w = new MessageWriter();
    w.reset(BINDING_REQUEST, v.transactionId)
      .addAttr(Attr.Userhash, computeUserhash(v.username, v.realm))
      .addString(Attr.Nonce, v.nonce)
      .addString(Attr.Realm, v.realm)
      .addAttr(Attr.PasswordAlgorithm, encodePasswordAlgorithm({ algorithm: PasswordAlgorithm.SHA256, params: Buffer.alloc(0) }))
      .addMessageIntegritySha256(key);
    assert.deepEqual(w.toBuffer(), v.bytes);
  });
});
