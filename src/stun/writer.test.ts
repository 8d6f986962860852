import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readAddress, readXorAddress } from './attributes/address.ts';
import { readErrorCode } from './attributes/errorCode.ts';
import { readUnknownAttributes } from './attributes/unknownAttributes.ts';
import { Attr, MessageClass, Method, messageType } from './constants.ts';
import { StunEncodeError, type StunEncodeErrorCode } from './errors.ts';
import { attrValue, decodeMessage, findAttr } from './message.ts';
import { MessageWriter } from './writer.ts';

const TID = Buffer.from('0102030405060708090a0b0c', 'hex');
const SUCCESS = messageType(Method.Binding, MessageClass.SuccessResponse);
const ERROR = messageType(Method.Binding, MessageClass.ErrorResponse);

function throwsCode(fn: () => unknown, code: StunEncodeErrorCode): void {
  assert.throws(fn, (err: unknown) => err instanceof StunEncodeError && err.code === code);
}

describe('MessageWriter', () => {
  it('writes the header and keeps the length field current', () => {
    const w = new MessageWriter().reset(SUCCESS, TID);
    assert.deepEqual(w.finish(), Buffer.from('010100002112a4420102030405060708090a0b0c', 'hex'));
    w.addString(Attr.Software, 'abcde');
    assert.equal(w.finish().readUInt16BE(2), 12);
    assert.equal(w.length, 32);
  });

  it('zeroes padding even when the buffer held an earlier message', () => {
    const w = new MessageWriter(64);
    w.reset(SUCCESS, TID).addAttr(0x7001, Buffer.alloc(40, 0xff));
    w.reset(SUCCESS, TID).addString(Attr.Software, 'a');
    assert.deepEqual(w.finish().subarray(20), Buffer.from('802200016100' + '0000', 'hex'));
  });

  it('reuses one buffer and grows it when a message does not fit', () => {
    const w = new MessageWriter(32);
    const first = w.reset(SUCCESS, TID).addString(Attr.Software, 'x').finish();
    assert.equal(w.reset(SUCCESS, TID).addString(Attr.Software, 'y').finish().buffer, first.buffer);
    w.reset(SUCCESS, TID).addAttr(Attr.Data, Buffer.alloc(3000, 7));
    const msg = decodeMessage(w.finish());
    assert.deepEqual(attrValue(msg, 0), Buffer.alloc(3000, 7));
  });

  it('finish() is a view and toBuffer() a copy', () => {
    const w = new MessageWriter().reset(SUCCESS, TID);
    const view = w.finish();
    const copy = w.toBuffer();
    w.reset(ERROR, TID);
    assert.equal(view[1], 0x11);
    assert.equal(copy[1], 0x01);
  });

  it('writes plain and XOR addresses of both families', () => {
    const v4 = { family: 4, address: '203.0.113.7', port: 3478 } as const;
    const v6 = { family: 6, address: '2001:db8::7', port: 65535 } as const;
    const w = new MessageWriter().reset(SUCCESS, TID)
      .addXorAddress(Attr.XorMappedAddress, v4)
      .addXorAddress(Attr.XorRelayedAddress, v6)
      .addAddress(Attr.ResponseOrigin, v4)
      .addAddress(Attr.OtherAddress, v6);
    const msg = decodeMessage(w.finish());
    assert.deepEqual(readXorAddress(attrValue(msg, 0), msg.transactionId), v4);
    assert.deepEqual(readXorAddress(attrValue(msg, 1), msg.transactionId), v6);
    assert.deepEqual(readAddress(attrValue(msg, 2)), v4);
    assert.deepEqual(readAddress(attrValue(msg, 3)), v6);
    // XOR-ed on the wire: the IPv4 bytes are not in clear.
    assert.equal(attrValue(msg, 0).includes(Buffer.from([203, 0, 113, 7])), false);
  });

  it('writes ERROR-CODE with the RFC reason by default, and UNKNOWN-ATTRIBUTES', () => {
    const w = new MessageWriter().reset(ERROR, TID).addErrorCode(420).addUnknownAttributes([0x0031, 0x7fff, 0x0001]);
    const msg = decodeMessage(w.finish());
    assert.deepEqual(readErrorCode(attrValue(msg, findAttr(msg, Attr.ErrorCode))), { code: 420, reason: 'Unknown Attribute' });
    assert.deepEqual(readUnknownAttributes(attrValue(msg, findAttr(msg, Attr.UnknownAttributes))), [0x0031, 0x7fff, 0x0001]);
    const withReason = decodeMessage(new MessageWriter().reset(ERROR, TID).addErrorCode(438, 'Stale').finish());
    assert.deepEqual(readErrorCode(attrValue(withReason, 0)), { code: 438, reason: 'Stale' });
  });

  it('writes 32- and 64-bit numbers', () => {
    const w = new MessageWriter().reset(SUCCESS, TID).addUint32(Attr.Lifetime, 0xffffffff).addUint64(Attr.IceControlling, 1n);
    assert.deepEqual(w.finish().subarray(20), Buffer.from('000d0004ffffffff802a00080000000000000001', 'hex'));
  });

  it('refuses values it cannot encode', () => {
    const w = new MessageWriter().reset(SUCCESS, TID);
    throwsCode(() => w.reset(0x4001, TID), 'STUN_BAD_VALUE');
    throwsCode(() => w.reset(SUCCESS, Buffer.alloc(11)), 'STUN_BAD_VALUE');
    throwsCode(() => w.addAttr(0x10000, Buffer.alloc(0)), 'STUN_BAD_VALUE');
    throwsCode(() => w.addUint32(Attr.Lifetime, -1), 'STUN_BAD_VALUE');
    throwsCode(() => w.addUint32(Attr.Lifetime, 2 ** 32), 'STUN_BAD_VALUE');
    throwsCode(() => w.addUint64(Attr.IceControlling, 2n ** 64n), 'STUN_BAD_VALUE');
    throwsCode(() => w.addErrorCode(200), 'STUN_BAD_VALUE');
    throwsCode(() => w.addErrorCode(700), 'STUN_BAD_VALUE');
    throwsCode(() => w.addErrorCode(400, 'x'.repeat(128)), 'STUN_VALUE_TOO_LONG');
    throwsCode(() => w.addMessageIntegritySha256(Buffer.alloc(1), 20 + 2), 'STUN_BAD_VALUE');
    throwsCode(() => w.addXorAddress(Attr.XorMappedAddress, { family: 4, address: '::1', port: 1 }), 'STUN_BAD_ADDRESS');
    throwsCode(() => w.addXorAddress(Attr.XorMappedAddress, { family: 6, address: '1.2.3.4', port: 1 }), 'STUN_BAD_ADDRESS');
    throwsCode(() => w.addAddress(Attr.MappedAddress, { family: 4, address: '1.2.3.4', port: 65536 }), 'STUN_BAD_ADDRESS');
    throwsCode(() => w.addAttr(Attr.Data, Buffer.alloc(0x10000)), 'STUN_VALUE_TOO_LONG');
    w.reset(SUCCESS, TID).addAttr(Attr.Data, Buffer.alloc(0xffe8));
    throwsCode(() => w.addAttr(Attr.Data, Buffer.alloc(16)), 'STUN_MESSAGE_TOO_LONG');
    assert.equal(w.addAttr(Attr.Data, Buffer.alloc(12)).length, 20 + 0xfffc);
    assert.equal(decodeMessage(w.finish()).attrCount, 2);
  });

  it('holds USERNAME, REALM, NONCE and SOFTWARE to RFC 8489 sending limits', () => {
    const w = new MessageWriter().reset(SUCCESS, TID);
    w.addString(Attr.Username, 'u'.repeat(508));
    throwsCode(() => w.addString(Attr.Username, 'u'.repeat(509)), 'STUN_VALUE_TOO_LONG');
    w.addString(Attr.Realm, 'r'.repeat(127));
    throwsCode(() => w.addString(Attr.Realm, 'r'.repeat(128)), 'STUN_VALUE_TOO_LONG');
    w.addString(Attr.Nonce, '\u{1F600}'.repeat(127)); // 127 characters, 508 bytes
    throwsCode(() => w.addString(Attr.Software, '\u00e9'.repeat(128)), 'STUN_VALUE_TOO_LONG');
    w.addString(0x7002, 'z'.repeat(2000));
  });
});
