import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleIPv4Response, sampleRequest } from '../../testdata/stun/rfc5769.ts';
import { Attr, HEADER_LENGTH, MessageClass, Method, messageType } from './constants.ts';
import { StunDecodeError, type StunDecodeErrorCode } from './errors.ts';
import { attrValue, decodeMessage, findAttr, isStunMessage, createStunMessage, unknownAttributes, RFC5780_REQUEST_ATTRIBUTES } from './message.ts';
import { MessageWriter } from './writer.ts';

const TID = Buffer.from('000102030405060708090a0b', 'hex');
const REQUEST = messageType(Method.Binding, MessageClass.Request);

function throwsCode(fn: () => unknown, code: StunDecodeErrorCode): void {
  assert.throws(fn, (err: unknown) => err instanceof StunDecodeError && err.code === code);
}

/** A header for `body`, with the right length unless told otherwise. */
function message(body: Buffer, length = body.length): Buffer {
  const header = Buffer.from('000100002112a442000102030405060708090a0b', 'hex');
  header.writeUInt16BE(length, 2);
  return Buffer.concat([header, body]);
}

function attr(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + ((value.length + 3) & ~3));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

describe('decodeMessage header checks', () => {
  it('refuses fewer than 20 bytes', () => {
    throwsCode(() => decodeMessage(Buffer.alloc(19)), 'STUN_TOO_SHORT');
  });

  it('refuses a first byte with the top bits set', () => {
    const buf = message(Buffer.alloc(0));
    buf[0] = 0x40;
    throwsCode(() => decodeMessage(buf), 'STUN_NOT_STUN');
  });

  it('refuses a wrong magic cookie', () => {
    const buf = message(Buffer.alloc(0));
    buf[7] = 0x43;
    throwsCode(() => decodeMessage(buf), 'STUN_BAD_COOKIE');
  });

  it('refuses a length that is not a multiple of 4', () => {
    throwsCode(() => decodeMessage(message(Buffer.alloc(6))), 'STUN_BAD_LENGTH');
  });

  it('refuses a length that does not match the bytes given', () => {
    throwsCode(() => decodeMessage(message(Buffer.alloc(8), 4)), 'STUN_BAD_LENGTH');
    throwsCode(() => decodeMessage(message(Buffer.alloc(8), 12)), 'STUN_BAD_LENGTH');
  });

  it('decodes a header without attributes', () => {
    const msg = decodeMessage(message(Buffer.alloc(0)));
    assert.equal(msg.type, REQUEST);
    assert.equal(msg.length, 0);
    assert.equal(msg.attrCount, 0);
    assert.deepEqual(msg.transactionId, TID);
  });
});

describe('decodeMessage attribute checks', () => {
  it('refuses an attribute that overruns the message', () => {
    const body = attr(Attr.Software, Buffer.from('abcd'));
    body.writeUInt16BE(5, 2);
    throwsCode(() => decodeMessage(message(body)), 'STUN_BAD_ATTRIBUTE');
  });

  it('refuses more attributes than the message can index', () => {
    const body = Buffer.concat(Array.from({ length: 5 }, () => attr(Attr.Software, Buffer.alloc(0))));
    assert.equal(decodeMessage(message(body), createStunMessage(5)).attrCount, 5);
    throwsCode(() => decodeMessage(message(body), createStunMessage(4)), 'STUN_BAD_ATTRIBUTE');
    const many = Buffer.concat(Array.from({ length: 65 }, () => attr(Attr.Software, Buffer.alloc(0))));
    throwsCode(() => decodeMessage(message(many)), 'STUN_BAD_ATTRIBUTE');
  });

  it('refuses MESSAGE-INTEGRITY that is not 20 bytes', () => {
    throwsCode(() => decodeMessage(message(attr(Attr.MessageIntegrity, Buffer.alloc(16)))), 'STUN_BAD_INTEGRITY');
  });

  it('refuses MESSAGE-INTEGRITY-SHA256 outside 16..32 bytes or not a multiple of 4', () => {
    for (const n of [12, 18, 36]) {
      throwsCode(() => decodeMessage(message(attr(Attr.MessageIntegritySha256, Buffer.alloc(n)))), 'STUN_BAD_INTEGRITY');
    }
    assert.equal(decodeMessage(message(attr(Attr.MessageIntegritySha256, Buffer.alloc(16)))).integritySha256Index, 0);
  });

  it('refuses FINGERPRINT that is not last or not 4 bytes', () => {
    const fp = attr(Attr.Fingerprint, Buffer.alloc(4));
    throwsCode(() => decodeMessage(message(Buffer.concat([fp, attr(Attr.Software, Buffer.alloc(0))]))), 'STUN_BAD_FINGERPRINT');
    throwsCode(() => decodeMessage(message(attr(Attr.Fingerprint, Buffer.alloc(8)))), 'STUN_BAD_FINGERPRINT');
  });

  it('ignores attributes after MESSAGE-INTEGRITY except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT', () => {
    const body = Buffer.concat([
      attr(Attr.Username, Buffer.from('u')),
      attr(Attr.MessageIntegrity, Buffer.alloc(20)),
      attr(Attr.Realm, Buffer.from('late')),
      attr(Attr.MessageIntegrity, Buffer.alloc(20)),
      attr(Attr.MessageIntegritySha256, Buffer.alloc(32)),
      attr(Attr.Nonce, Buffer.from('later')),
      attr(Attr.Fingerprint, Buffer.alloc(4)),
    ]);
    const msg = decodeMessage(message(body));
    assert.deepEqual(Array.from(msg.attrTypes.subarray(0, msg.attrCount)), [
      Attr.Username, Attr.MessageIntegrity, Attr.MessageIntegritySha256, Attr.Fingerprint,
    ]);
    assert.equal(msg.integrityIndex, 1);
    assert.equal(msg.integritySha256Index, 2);
    assert.equal(msg.fingerprintIndex, 3);
    assert.equal(msg.ignoredAttrCount, 3);
    assert.equal(findAttr(msg, Attr.Realm), -1);
  });

  it('accepts unknown attribute types and odd lengths with padding', () => {
    const body = Buffer.concat([attr(0x7777, Buffer.from('xyz')), attr(0xc001, Buffer.alloc(0))]);
    const msg = decodeMessage(message(body));
    assert.equal(msg.attrCount, 2);
    assert.deepEqual(attrValue(msg, 0), Buffer.from('xyz'));
    assert.equal(msg.attrOffsets[0], HEADER_LENGTH + 4);
    assert.equal(attrValue(msg, 1).length, 0);
  });
});

describe('decodeMessage reuse', () => {
  it('reuses the message handed in and forgets the previous one', () => {
    const into = createStunMessage();
    const first = decodeMessage(sampleRequest.bytes, into);
    assert.equal(first, into);
    assert.equal(into.attrCount, 6);
    assert.equal(into.fingerprintIndex, 5);
    decodeMessage(message(attr(Attr.Software, Buffer.from('x'))), into);
    assert.equal(into.attrCount, 1);
    assert.equal(into.integrityIndex, -1);
    assert.equal(into.fingerprintIndex, -1);
    assert.equal(into.method, Method.Binding);
  });

  it('reads values as views of the caller’s buffer', () => {
    const msg = decodeMessage(sampleIPv4Response.bytes);
    const v = attrValue(msg, findAttr(msg, Attr.Software));
    assert.equal(v.buffer, sampleIPv4Response.bytes.buffer);
    assert.equal(v.toString(), 'test vector');
  });

  it('finds the first of duplicated attributes', () => {
    const w = new MessageWriter().reset(REQUEST, TID).addString(Attr.Software, 'a').addString(Attr.Software, 'b');
    const msg = decodeMessage(w.finish());
    assert.equal(attrValue(msg, findAttr(msg, Attr.Software)).toString(), 'a');
    assert.equal(findAttr(msg, Attr.Username), -1);
  });
});

describe('isStunMessage', () => {
  it('tells STUN from other traffic on the port', () => {
    assert.equal(isStunMessage(sampleRequest.bytes), true);
    assert.equal(isStunMessage(sampleRequest.bytes.subarray(0, 19)), false);
    const dtls = Buffer.from(sampleRequest.bytes);
    dtls[0] = 0x16;
    assert.equal(isStunMessage(dtls), false);
    const channel = Buffer.from(sampleRequest.bytes);
    channel[0] = 0x40;
    assert.equal(isStunMessage(channel), false);
    const cookie = Buffer.from(sampleRequest.bytes);
    cookie[4] = 0;
    assert.equal(isStunMessage(cookie), false);
  });
});

describe('unknownAttributes (RFC 8489 §6.3.1.1, §14)', () => {
  it('lists unknown comprehension-required types and those the role does not serve, never comprehension-optional ones', () => {
    const w = new MessageWriter().reset(REQUEST, TID);
    w.addAttr(0x7f01, Buffer.alloc(4)); // comprehension-required, unknown
    w.addAttr(Attr.ChangeRequest, Buffer.alloc(4));
    w.addAttr(0xc001, Buffer.alloc(4)); // comprehension-optional, unknown: ignored
    w.addString(Attr.Software, 'x');
    const msg = decodeMessage(w.toBuffer());
    const out: number[] = [99];
    assert.deepEqual(unknownAttributes(msg, new Set(), out), [0x7f01]);
    assert.deepEqual(unknownAttributes(msg, RFC5780_REQUEST_ATTRIBUTES, out), [0x7f01, Attr.ChangeRequest]);
    assert.equal(out.length, 2, 'written into the array handed in');
  });
});
