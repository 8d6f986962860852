import { Attr, HEADER_LENGTH, MAGIC_COOKIE, MAX_BODY_LENGTH, TRANSACTION_ID_LENGTH } from './constants.ts';
import { StunEncodeError } from './errors.ts';
import { fingerprintValue, integrityDigest } from './integrity.ts';
import { addressValueLength, writeAddressValue, type TransportAddress } from './attributes/address.ts';
import { errorCodeReasonLength, errorReason, writeErrorCodeValue } from './attributes/errorCode.ts';
import { charCount, sendLimit } from './attributes/text.ts';

const MAX_MESSAGE = HEADER_LENGTH + MAX_BODY_LENGTH;

/**
 * Encodes STUN messages into one reusable buffer: `reset`, add attributes in order, `finish`.
 * The header's length field is kept current after every attribute, so MESSAGE-INTEGRITY and
 * FINGERPRINT are computed over exactly what precedes them. Padding is written as zeros.
 */
export class MessageWriter {
  #buf: Buffer;
  #end = HEADER_LENGTH;

  constructor(initialCapacity = 1500) {
    this.#buf = Buffer.alloc(Math.max(HEADER_LENGTH, initialCapacity));
  }

  /** The underlying buffer; attributes written by {@link reserveAttr} go here. */
  get buffer(): Buffer {
    return this.#buf;
  }

  /** Bytes written so far, header included. */
  get length(): number {
    return this.#end;
  }

  /** Starts a message of `type` (see `messageType`); `transactionId` is copied. */
  reset(type: number, transactionId: Buffer): this {
    if (!Number.isInteger(type) || type < 0 || type > 0x3fff) {
      throw new StunEncodeError('STUN_BAD_VALUE', `message type 0x${type.toString(16)}`);
    }
    if (transactionId.length !== TRANSACTION_ID_LENGTH) {
      throw new StunEncodeError('STUN_BAD_VALUE', `transaction id of ${transactionId.length} bytes`);
    }
    const buf = this.#buf;
    buf.writeUInt16BE(type, 0);
    buf.writeUInt16BE(0, 2);
    buf.writeUInt32BE(MAGIC_COOKIE, 4);
    transactionId.copy(buf, 8);
    this.#end = HEADER_LENGTH;
    return this;
  }

  /**
   * Appends an attribute header for `valueLength` bytes, zeroes the value and its padding, and
   * returns the offset of the value in {@link buffer} for the caller to fill.
   */
  reserveAttr(type: number, valueLength: number): number {
    if (!Number.isInteger(type) || type < 0 || type > 0xffff) {
      throw new StunEncodeError('STUN_BAD_VALUE', `attribute type ${type}`);
    }
    if (!Number.isInteger(valueLength) || valueLength < 0 || valueLength > 0xffff) {
      throw new StunEncodeError('STUN_VALUE_TOO_LONG', `attribute 0x${type.toString(16)} of ${valueLength} bytes`);
    }
    const start = this.#end;
    const end = start + 4 + ((valueLength + 3) & ~3);
    if (end > MAX_MESSAGE) throw new StunEncodeError('STUN_MESSAGE_TOO_LONG', `message of ${end} bytes`);
    if (end > this.#buf.length) this.#grow(end);
    const buf = this.#buf;
    buf.writeUInt16BE(type, start);
    buf.writeUInt16BE(valueLength, start + 2);
    buf.fill(0, start + 4, end);
    buf.writeUInt16BE(end - HEADER_LENGTH, 2);
    this.#end = end;
    return start + 4;
  }

  #grow(needed: number): void {
    let size = this.#buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.alloc(Math.min(size, MAX_MESSAGE));
    this.#buf.copy(next, 0, 0, this.#end);
    this.#buf = next;
  }

  addAttr(type: number, value: Buffer): this {
    const off = this.reserveAttr(type, value.length);
    value.copy(this.#buf, off);
    return this;
  }

  addUint32(type: number, value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new StunEncodeError('STUN_BAD_VALUE', `${value} is not a 32-bit unsigned integer`);
    }
    const off = this.reserveAttr(type, 4);
    this.#buf.writeUInt32BE(value, off);
    return this;
  }

  addUint64(type: number, value: bigint): this {
    if (value < 0n || value > 0xffffffffffffffffn) {
      throw new StunEncodeError('STUN_BAD_VALUE', `${value} is not a 64-bit unsigned integer`);
    }
    const off = this.reserveAttr(type, 8);
    this.#buf.writeBigUInt64BE(value, off);
    return this;
  }

  /** UTF-8 text; USERNAME, REALM, NONCE and SOFTWARE are held to RFC 8489's sending limits. */
  addString(type: number, s: string): this {
    const bytes = Buffer.byteLength(s, 'utf8');
    const limit = sendLimit(type);
    if (limit !== undefined && (bytes > limit.bytes || (s.length > limit.chars && charCount(s) > limit.chars))) {
      throw new StunEncodeError('STUN_VALUE_TOO_LONG', `attribute 0x${type.toString(16)} of ${bytes} bytes`);
    }
    const off = this.reserveAttr(type, bytes);
    this.#buf.write(s, off, bytes, 'utf8');
    return this;
  }

  /** MAPPED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS. */
  addAddress(type: number, addr: TransportAddress): this {
    const off = this.reserveAttr(type, addressValueLength(addr));
    writeAddressValue(this.#buf, off, addr, false);
    return this;
  }

  /** XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS. */
  addXorAddress(type: number, addr: TransportAddress): this {
    const off = this.reserveAttr(type, addressValueLength(addr));
    writeAddressValue(this.#buf, off, addr, true);
    return this;
  }

  /** ERROR-CODE; `reason` defaults to the RFC's phrase for the code. */
  addErrorCode(code: number, reason: string = errorReason(code)): this {
    const reasonBytes = errorCodeReasonLength(code, reason);
    const off = this.reserveAttr(Attr.ErrorCode, 4 + reasonBytes);
    writeErrorCodeValue(this.#buf, off, code, reason, reasonBytes);
    return this;
  }

  addUnknownAttributes(types: readonly number[]): this {
    const off = this.reserveAttr(Attr.UnknownAttributes, 2 * types.length);
    for (let k = 0; k < types.length; k++) this.#buf.writeUInt16BE(types[k]!, off + 2 * k);
    return this;
  }

  /** HMAC-SHA1 over the message so far (RFC 8489 §14.5). */
  addMessageIntegrity(key: Buffer): this {
    const off = this.reserveAttr(Attr.MessageIntegrity, 20);
    integrityDigest('sha1', key, this.#buf, off - 4, 20).copy(this.#buf, off);
    return this;
  }

  /** HMAC-SHA256 over the message so far, truncated to `length` (16-32, multiple of 4) bytes. */
  addMessageIntegritySha256(key: Buffer, length = 32): this {
    if (length < 16 || length > 32 || (length & 3) !== 0) {
      throw new StunEncodeError('STUN_BAD_VALUE', `MESSAGE-INTEGRITY-SHA256 of ${length} bytes`);
    }
    const off = this.reserveAttr(Attr.MessageIntegritySha256, length);
    integrityDigest('sha256', key, this.#buf, off - 4, length).copy(this.#buf, off, 0, length);
    return this;
  }

  /** Must be the last attribute (RFC 8489 §14.7). */
  addFingerprint(): this {
    const off = this.reserveAttr(Attr.Fingerprint, 4);
    this.#buf.writeUInt32BE(fingerprintValue(this.#buf, off - 4), off);
    return this;
  }

  /** The message: a view of the writer's buffer, valid until the next `reset` or attribute. */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#end);
  }

  /** The message as a copy of its own. */
  toBuffer(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#end));
  }
}
