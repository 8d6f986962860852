import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  rfc8489Sha256Request,
  sampleIPv4Response,
  sampleIPv6Response,
  sampleLongTermRequest,
  sampleRequest,
} from '../../testdata/stun/rfc5769.ts';
import { readAddress, readXorAddress, type TransportAddress } from './attributes/address.ts';
import { readAddressFamily } from './attributes/addressFamily.ts';
import { readChangeRequest } from './attributes/changeRequest.ts';
import { readChannelNumber } from './attributes/channelNumber.ts';
import { readConnectionId } from './attributes/connectionId.ts';
import { readErrorCode } from './attributes/errorCode.ts';
import { readEvenPort } from './attributes/evenPort.ts';
import { readPriority, readTieBreaker } from './attributes/ice.ts';
import { readLifetime } from './attributes/lifetime.ts';
import { readPaddingLength } from './attributes/padding.ts';
import { readPasswordAlgorithm, readPasswordAlgorithms } from './attributes/passwordAlgorithm.ts';
import { readRequestedTransport } from './attributes/requestedTransport.ts';
import { readReservationToken } from './attributes/reservationToken.ts';
import { readResponsePort } from './attributes/responsePort.ts';
import { readNonce, readRealm, readSoftware, readUsername } from './attributes/text.ts';
import { readUnknownAttributes } from './attributes/unknownAttributes.ts';
import { readUserhash } from './attributes/userhash.ts';
import { readUint32 } from './attributes/value.ts';
import { Attr, messageType } from './constants.ts';
import { StunDecodeError } from './errors.ts';
import { isChannelData, stunFrameLength } from './framing.ts';
import { checkFingerprint, checkMessageIntegrity, checkMessageIntegritySha256 } from './integrity.ts';
import { attrValue, decodeMessage, isStunMessage, createStunMessage, type StunMessage } from './message.ts';
import { MessageWriter } from './writer.ts';

const RUNS = { numRuns: 2000 };
const KEY = Buffer.from('fuzz key');

/** Runs `fn`; a StunDecodeError is an allowed outcome, anything else fails the test. */
function returnsOrDecodeError(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof StunDecodeError) return false;
    throw err;
  }
}

const READERS: ReadonlyArray<(value: Buffer, tid: Buffer) => unknown> = [
  readAddress, readXorAddress, readAddressFamily, readChangeRequest, readChannelNumber, readConnectionId,
  readErrorCode, readEvenPort, readPriority, readTieBreaker, readLifetime, readPaddingLength,
  readPasswordAlgorithm, readPasswordAlgorithms, readRequestedTransport, readReservationToken,
  readResponsePort, readNonce, readRealm, readSoftware, readUsername, readUnknownAttributes, readUserhash,
  (v) => readUint32(v),
];

/** Everything one can do with untrusted bytes: none of it may throw anything but StunDecodeError. */
function poke(bytes: Buffer, into?: StunMessage): void {
  isStunMessage(bytes);
  isChannelData(bytes);
  for (let off = 0; off <= Math.min(bytes.length, 8); off++) stunFrameLength(bytes, off);
  returnsOrDecodeError(() => {
    const msg = decodeMessage(bytes, into);
    assert.ok(msg.attrCount <= msg.attrTypes.length);
    for (let i = 0; i < msg.attrCount; i++) {
      const value = attrValue(msg, i);
      assert.ok(value.byteOffset + value.length <= bytes.byteOffset + bytes.length);
      for (const read of READERS) returnsOrDecodeError(() => read(value, msg.transactionId));
    }
    checkMessageIntegrity(msg, KEY);
    checkMessageIntegritySha256(msg, KEY);
    checkFingerprint(msg);
  });
}

// --- random well-formed messages --------------------------------------------------------------

const port = fc.integer({ min: 0, max: 0xffff });
const address: fc.Arbitrary<TransportAddress> = fc.oneof(
  fc.record({ family: fc.constant(4 as const), address: fc.ipV4(), port }),
  // Written by the codec's own formatter so that it comes back identical.
  fc.uint8Array({ minLength: 16, maxLength: 16 }).chain((b) => {
    const text = readAddress(Buffer.concat([Buffer.from([0, 2, 0, 0]), b])).address;
    return fc.record({ family: fc.constant(6 as const), address: fc.constant(text), port });
  }),
);
const text = fc.string({ unit: 'grapheme', maxLength: 12 });

type AttrSpec =
  | { kind: 'xor'; type: number; addr: TransportAddress }
  | { kind: 'plain'; type: number; addr: TransportAddress }
  | { kind: 'text'; type: number; s: string }
  | { kind: 'error'; code: number; reason: string }
  | { kind: 'unknown'; types: number[] }
  | { kind: 'u32'; type: number; n: number }
  | { kind: 'raw'; type: number; value: Buffer };

const CHECKS: ReadonlySet<number> = new Set([Attr.MessageIntegrity, Attr.MessageIntegritySha256, Attr.Fingerprint]);

const attrSpec: fc.Arbitrary<AttrSpec> = fc.oneof(
  fc.record({
    kind: fc.constant('xor' as const),
    type: fc.constantFrom(Attr.XorMappedAddress, Attr.XorPeerAddress, Attr.XorRelayedAddress),
    addr: address,
  }),
  fc.record({
    kind: fc.constant('plain' as const),
    type: fc.constantFrom(Attr.MappedAddress, Attr.AlternateServer, Attr.ResponseOrigin, Attr.OtherAddress),
    addr: address,
  }),
  fc.record({ kind: fc.constant('text' as const), type: fc.constantFrom(Attr.Username, Attr.Realm, Attr.Nonce, Attr.Software), s: text }),
  fc.record({ kind: fc.constant('error' as const), code: fc.integer({ min: 300, max: 699 }), reason: text }),
  fc.record({ kind: fc.constant('unknown' as const), types: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 9 }) }),
  fc.record({ kind: fc.constant('u32' as const), type: fc.constantFrom(Attr.Lifetime, Attr.Priority, Attr.ConnectionId), n: fc.nat({ max: 0xffffffff }) }),
  fc.record({
    kind: fc.constant('raw' as const),
    type: fc.integer({ min: 0, max: 0xffff }).filter((t) => !CHECKS.has(t)),
    value: fc.uint8Array({ maxLength: 48 }).map((a) => Buffer.from(a)),
  }),
);

interface MessageSpec {
  type: number;
  tid: Buffer;
  attrs: AttrSpec[];
  integrity: boolean;
  integritySha256: boolean;
  fingerprint: boolean;
}

const messageSpec: fc.Arbitrary<MessageSpec> = fc.record({
  type: fc.tuple(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 3 })).map(([m, c]) => messageType(m, c)),
  tid: fc.uint8Array({ minLength: 12, maxLength: 12 }).map((a) => Buffer.from(a)),
  attrs: fc.array(attrSpec, { maxLength: 12 }),
  integrity: fc.boolean(),
  integritySha256: fc.boolean(),
  fingerprint: fc.boolean(),
});

const writer = new MessageWriter(64);

function encode(spec: MessageSpec): Buffer {
  const w = writer.reset(spec.type, spec.tid);
  for (const a of spec.attrs) {
    switch (a.kind) {
      case 'xor': w.addXorAddress(a.type, a.addr); break;
      case 'plain': w.addAddress(a.type, a.addr); break;
      case 'text': w.addString(a.type, a.s); break;
      case 'error': w.addErrorCode(a.code, a.reason); break;
      case 'unknown': w.addUnknownAttributes(a.types); break;
      case 'u32': w.addUint32(a.type, a.n); break;
      case 'raw': w.addAttr(a.type, a.value); break;
    }
  }
  if (spec.integrity) w.addMessageIntegrity(KEY);
  if (spec.integritySha256) w.addMessageIntegritySha256(KEY);
  if (spec.fingerprint) w.addFingerprint();
  return w.toBuffer();
}

function readBack(msg: StunMessage, i: number, a: AttrSpec): unknown {
  const v = attrValue(msg, i);
  switch (a.kind) {
    case 'xor': return readXorAddress(v, msg.transactionId);
    case 'plain': return readAddress(v);
    case 'text': return readUsername(v); // same UTF-8 rules, a larger limit for the others
    case 'error': return readErrorCode(v);
    case 'unknown': return readUnknownAttributes(v);
    case 'u32': return readUint32(v);
    case 'raw': return v;
  }
}

function expected(a: AttrSpec): unknown {
  switch (a.kind) {
    case 'xor':
    case 'plain': return { ...a.addr }; // fast-check records have a null prototype
    case 'text': return a.s;
    case 'error': return { code: a.code, reason: a.reason };
    case 'unknown': return a.types;
    case 'u32': return a.n;
    case 'raw': return a.value;
  }
}

describe('property: encode then decode', () => {
  it('gives back every attribute, and the integrity checks pass', () => {
    const into = createStunMessage();
    fc.assert(
      fc.property(messageSpec, (spec) => {
        const bytes = encode(spec);
        const msg = decodeMessage(bytes, into);
        assert.equal(msg.type, spec.type);
        assert.deepEqual(msg.transactionId, spec.tid);
        const checks = Number(spec.integrity) + Number(spec.integritySha256) + Number(spec.fingerprint);
        assert.equal(msg.attrCount, spec.attrs.length + checks);
        spec.attrs.forEach((a, i) => {
          assert.equal(msg.attrTypes[i], a.kind === 'error' ? Attr.ErrorCode : a.kind === 'unknown' ? Attr.UnknownAttributes : a.type);
          assert.deepEqual(readBack(msg, i, a), expected(a));
        });
        assert.equal(checkMessageIntegrity(msg, KEY), spec.integrity);
        assert.equal(checkMessageIntegritySha256(msg, KEY), spec.integritySha256);
        assert.equal(checkFingerprint(msg), spec.fingerprint);
        assert.equal(stunFrameLength(bytes, 0), bytes.length);
        assert.equal(isStunMessage(bytes), bytes[0]! <= 3);
      }),
      RUNS,
    );
  });
});

describe('property: untrusted bytes only ever give StunDecodeError', () => {
  const into = createStunMessage(8);

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (a) => poke(Buffer.from(a), into)), RUNS);
  });

  it('a valid header followed by random attributes of any type', () => {
    const types = fc.oneof(fc.constantFrom(...Object.values(Attr)), fc.integer({ min: 0, max: 0xffff }));
    const attr = fc.tuple(types, fc.uint8Array({ maxLength: 40 }));
    fc.assert(
      fc.property(fc.array(attr, { maxLength: 10 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), (attrs, tid) => {
        const parts = attrs.map(([type, value]) => {
          const out = Buffer.alloc(4 + ((value.length + 3) & ~3));
          out.writeUInt16BE(type, 0);
          out.writeUInt16BE(value.length, 2);
          out.set(value, 4);
          return out;
        });
        const body = Buffer.concat(parts);
        const header = Buffer.alloc(20);
        header.writeUInt16BE(0x0001, 0);
        header.writeUInt16BE(body.length, 2);
        header.writeUInt32BE(0x2112a442, 4);
        header.set(tid, 8);
        poke(Buffer.concat([header, body]), into);
      }),
      RUNS,
    );
  });

  it('truncated valid messages', () => {
    fc.assert(
      fc.property(messageSpec, fc.nat(), (spec, cut) => {
        const bytes = encode(spec);
        const at = cut % (bytes.length + 1);
        const part = bytes.subarray(0, at);
        poke(part, into);
        if (at < bytes.length) assert.throws(() => decodeMessage(part), StunDecodeError);
      }),
      RUNS,
    );
  });

  it('bit-flipped and mutated valid messages, the RFC vectors among them', () => {
    const vectors = [sampleRequest, sampleIPv4Response, sampleIPv6Response, sampleLongTermRequest, rfc8489Sha256Request]
      .map((v) => v.bytes);
    const valid = fc.oneof(fc.constantFrom(...vectors), messageSpec.map(encode));
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
    );
    fc.assert(
      fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }), (original, mutations) => {
        let bytes = Buffer.from(original);
        for (const m of mutations) {
          const at = bytes.length === 0 ? 0 : m.at % bytes.length;
          if (m.kind === 'flip' && bytes.length > 0) bytes[at]! ^= 1 << m.bit;
          else if (m.kind === 'set' && bytes.length > 0) bytes[at] = m.byte;
          else if (m.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
          else if (m.kind === 'delete') bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.n)]);
        }
        poke(bytes, into);
      }),
      RUNS,
    );
  });
});
