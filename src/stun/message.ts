import { Attr, HEADER_LENGTH, MAGIC_COOKIE, classOf, isComprehensionRequired, isKnownAttribute, methodOf } from './constants.ts';
import { StunDecodeError } from './errors.ts';

/** Attributes one message may index unless a bigger {@link createStunMessage} is handed in. */
export const DEFAULT_ATTR_CAPACITY = 64;

/**
 * A decoded STUN message: the caller's bytes plus an index of the attributes. Nothing is
 * copied; values are read on demand with the readers of `attributes/`. The object and its typed
 * arrays may be reused for the next message (`decodeMessage(buf, msg)`).
 */
export interface StunMessage {
  buf: Buffer;
  type: number;
  method: number;
  cls: number;
  /** The header's length field: bytes after the 20-byte header. */
  length: number;
  /** A view of bytes 8..19 of `buf`. */
  transactionId: Buffer;
  attrCount: number;
  attrTypes: Uint16Array;
  /** Offset in `buf` of each attribute's value (its header is the 4 bytes before). */
  attrOffsets: Uint32Array;
  attrLengths: Uint16Array;
  /** Index of MESSAGE-INTEGRITY, or -1. */
  integrityIndex: number;
  /** Index of MESSAGE-INTEGRITY-SHA256, or -1. */
  integritySha256Index: number;
  /** Index of FINGERPRINT (always the last attribute), or -1. */
  fingerprintIndex: number;
  /**
   * Attributes after MESSAGE-INTEGRITY(-SHA256) other than those allowed there: RFC 8489 §14.5
   * and §14.6 say to ignore them, so they are not indexed; this counts them.
   */
  ignoredAttrCount: number;
}

const EMPTY = Buffer.alloc(0);

export function createStunMessage(capacity = DEFAULT_ATTR_CAPACITY): StunMessage {
  return {
    buf: EMPTY,
    type: 0,
    method: 0,
    cls: 0,
    length: 0,
    transactionId: EMPTY,
    attrCount: 0,
    attrTypes: new Uint16Array(capacity),
    attrOffsets: new Uint32Array(capacity),
    attrLengths: new Uint16Array(capacity),
    integrityIndex: -1,
    integritySha256Index: -1,
    fingerprintIndex: -1,
    ignoredAttrCount: 0,
  };
}

/**
 * Quick test for demultiplexing (RFC 7983 §7: STUN's first byte is 0-3, DTLS 20-63, ChannelData
 * 64-79): could these bytes be one STUN message? Checks the size, the first byte and the magic
 * cookie; {@link decodeMessage} does the rest.
 */
export function isStunMessage(buf: Buffer): boolean {
  return buf.length >= HEADER_LENGTH && buf[0]! <= 3 && buf.readUInt32BE(4) === MAGIC_COOKIE;
}

/**
 * Decodes exactly one STUN message (a whole datagram, or one frame cut by `stunFrameLength`).
 * Throws only {@link StunDecodeError}. Checks the header, that every attribute fits, the lengths
 * of MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, and that FINGERPRINT is last.
 * Attribute values are not checked here: each reader checks its own.
 */
export function decodeMessage(buf: Buffer, into?: StunMessage): StunMessage {
  const size = buf.length;
  if (size < HEADER_LENGTH) {
    throw new StunDecodeError('STUN_TOO_SHORT', `${size} bytes is shorter than a STUN header`);
  }
  const type = buf.readUInt16BE(0);
  if ((type & 0xc000) !== 0) throw new StunDecodeError('STUN_NOT_STUN', 'top two bits are not 0');
  if (buf.readUInt32BE(4) !== MAGIC_COOKIE) throw new StunDecodeError('STUN_BAD_COOKIE', 'wrong magic cookie');
  const length = buf.readUInt16BE(2);
  if ((length & 3) !== 0) throw new StunDecodeError('STUN_BAD_LENGTH', `length ${length} is not a multiple of 4`);
  if (length !== size - HEADER_LENGTH) {
    throw new StunDecodeError('STUN_BAD_LENGTH', `length ${length} does not match ${size - HEADER_LENGTH} bytes`);
  }

  const msg = into ?? createStunMessage();
  const capacity = msg.attrTypes.length;
  const types = msg.attrTypes;
  const offsets = msg.attrOffsets;
  const lengths = msg.attrLengths;
  let count = 0;
  let integrity = -1;
  let integritySha256 = -1;
  let fingerprint = -1;
  let ignored = 0;

  // Offsets stay 4-aligned and `size` is 4-aligned, so each header fits and so does the
  // padding of a value that fits.
  let off = HEADER_LENGTH;
  while (off < size) {
    const t = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    const value = off + 4;
    if (value + len > size) {
      throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `attribute 0x${t.toString(16)} overruns the message`, t);
    }
    off = value + ((len + 3) & ~3);

    if (t === Attr.Fingerprint) {
      // RFC 8489 §14.7: FINGERPRINT is the last attribute.
      if (len !== 4) throw new StunDecodeError('STUN_BAD_FINGERPRINT', `FINGERPRINT of ${len} bytes`, t);
      if (off !== size) throw new StunDecodeError('STUN_BAD_FINGERPRINT', 'FINGERPRINT is not last', t);
      fingerprint = count;
    } else if (integritySha256 >= 0) {
      // RFC 8489 §14.6: after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT counts.
      ignored++;
      continue;
    } else if (t === Attr.MessageIntegritySha256) {
      // RFC 8489 §14.6: 16 to 32 bytes (a truncated HMAC), a multiple of 4.
      if (len < 16 || len > 32 || (len & 3) !== 0) {
        throw new StunDecodeError('STUN_BAD_INTEGRITY', `MESSAGE-INTEGRITY-SHA256 of ${len} bytes`, t);
      }
      integritySha256 = count;
    } else if (integrity >= 0) {
      // RFC 8489 §14.5: after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count.
      ignored++;
      continue;
    } else if (t === Attr.MessageIntegrity) {
      if (len !== 20) throw new StunDecodeError('STUN_BAD_INTEGRITY', `MESSAGE-INTEGRITY of ${len} bytes`, t);
      integrity = count;
    }

    if (count === capacity) {
      throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `too many attributes (more than ${capacity})`, t);
    }
    types[count] = t;
    offsets[count] = value;
    lengths[count] = len;
    count++;
  }

  msg.buf = buf;
  msg.type = type;
  msg.method = methodOf(type);
  msg.cls = classOf(type);
  msg.length = length;
  msg.transactionId = buf.subarray(8, HEADER_LENGTH);
  msg.attrCount = count;
  msg.integrityIndex = integrity;
  msg.integritySha256Index = integritySha256;
  msg.fingerprintIndex = fingerprint;
  msg.ignoredAttrCount = ignored;
  return msg;
}

/** Index of the first attribute of this type, or -1 (RFC 8489 §14: later duplicates are ignored). */
export function findAttr(msg: StunMessage, type: number): number {
  const types = msg.attrTypes;
  for (let i = 0; i < msg.attrCount; i++) {
    if (types[i] === type) return i;
  }
  return -1;
}

/** The request attributes of RFC 5780 §7: a role without a second address does not serve them. */
export const RFC5780_REQUEST_ATTRIBUTES: ReadonlySet<number> = new Set([Attr.ChangeRequest, Attr.ResponsePort]);

/**
 * The comprehension-required attributes of `msg` (RFC 8489 §14: types below 0x8000) that p2pd
 * does not know, or that the role answering does not serve (`notServed`), written into `out`:
 * a request with any gets 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1). Comprehension-optional
 * ones are ignored. `out` is reused by the caller: nothing is allocated per request.
 */
export function unknownAttributes(msg: StunMessage, notServed: ReadonlySet<number>, out: number[]): number[] {
  out.length = 0;
  const types = msg.attrTypes;
  for (let i = 0; i < msg.attrCount; i++) {
    const t = types[i]!;
    if (isComprehensionRequired(t) && (!isKnownAttribute(t) || notServed.has(t))) out.push(t);
  }
  return out;
}

/** A view of attribute i's value (no padding), valid as long as the message's buffer. */
export function attrValue(msg: StunMessage, i: number): Buffer {
  const start = msg.attrOffsets[i]!;
  return msg.buf.subarray(start, start + msg.attrLengths[i]!);
}
