import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Attr,
  MessageClass,
  Method,
  classOf,
  isComprehensionRequired,
  isKnownAttribute,
  messageType,
  methodOf,
} from './constants.ts';

describe('message type', () => {
  it('interleaves method and class as on the wire (RFC 8489 §5, RFC 8656 §13)', () => {
    assert.equal(messageType(Method.Binding, MessageClass.Request), 0x0001);
    assert.equal(messageType(Method.Binding, MessageClass.Indication), 0x0011);
    assert.equal(messageType(Method.Binding, MessageClass.SuccessResponse), 0x0101);
    assert.equal(messageType(Method.Binding, MessageClass.ErrorResponse), 0x0111);
    assert.equal(messageType(Method.Allocate, MessageClass.Request), 0x0003);
    assert.equal(messageType(Method.Allocate, MessageClass.ErrorResponse), 0x0113);
    assert.equal(messageType(Method.Send, MessageClass.Indication), 0x0016);
    assert.equal(messageType(Method.Data, MessageClass.Indication), 0x0017);
    assert.equal(messageType(Method.ConnectionAttempt, MessageClass.Indication), 0x001c);
    assert.equal(messageType(0xfff, MessageClass.ErrorResponse), 0x3fff);
  });

  it('splits back into the same method and class for every method and class', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 3 }), (method, cls) => {
        const type = messageType(method, cls);
        return type <= 0x3fff && methodOf(type) === method && classOf(type) === cls;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('attribute types', () => {
  it('needs comprehension below 0x8000 only', () => {
    assert.equal(isComprehensionRequired(Attr.XorMappedAddress), true);
    assert.equal(isComprehensionRequired(0x7fff), true);
    assert.equal(isComprehensionRequired(Attr.Software), false);
    assert.equal(isComprehensionRequired(Attr.Fingerprint), false);
  });

  it('knows STUN, RFC 5780, TURN and ICE attributes but not the RFC 3489 leftovers', () => {
    for (const t of [
      Attr.Username, Attr.MessageIntegrity, Attr.MessageIntegritySha256, Attr.Userhash, Attr.ChangeRequest,
      Attr.ResponsePort, Attr.Padding, Attr.Lifetime, Attr.XorPeerAddress, Attr.RequestedTransport, Attr.Priority,
      Attr.UseCandidate, Attr.ConnectionId, Attr.Fingerprint,
    ]) {
      assert.equal(isKnownAttribute(t), true, `0x${t.toString(16)}`);
    }
    for (const t of [Attr.ResponseAddress, Attr.SourceAddress, Attr.ChangedAddress, Attr.Password, Attr.ReflectedFrom, 0x0030, 0x7fff]) {
      assert.equal(isKnownAttribute(t), false, `0x${t.toString(16)}`);
    }
  });
});
