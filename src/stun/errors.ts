import { P2pdError } from '../errors.ts';

/**
 * Stable codes of the STUN codec. Decoding throws only {@link StunDecodeError}; a server answers
 * any of them with 400 Bad Request (or drops an indication) and counts the code.
 */
export type StunDecodeErrorCode =
  /** Fewer than 20 bytes. */
  | 'STUN_TOO_SHORT'
  /** The two top bits of the first byte are not 0 (or, when framing TCP, not 00 or 01). */
  | 'STUN_NOT_STUN'
  | 'STUN_BAD_COOKIE'
  /** Length field not a multiple of 4, or not matching the bytes given. */
  | 'STUN_BAD_LENGTH'
  /** An attribute overruns the message, there are too many, or its value is malformed. */
  | 'STUN_BAD_ATTRIBUTE'
  /** An address family other than 0x01 (IPv4) or 0x02 (IPv6). */
  | 'STUN_BAD_ADDRESS_FAMILY'
  /** A text value over its RFC limit. */
  | 'STUN_VALUE_TOO_LONG'
  /** A text value that is not valid UTF-8. */
  | 'STUN_BAD_UTF8'
  /** MESSAGE-INTEGRITY(-SHA256) of the wrong length. */
  | 'STUN_BAD_INTEGRITY'
  /** FINGERPRINT of the wrong length or not last. */
  | 'STUN_BAD_FINGERPRINT';

export class StunDecodeError extends P2pdError {
  declare readonly code: StunDecodeErrorCode;
  /** The attribute type concerned, or -1 when the error is about the message itself. */
  readonly attrType: number;

  constructor(code: StunDecodeErrorCode, message: string, attrType = -1) {
    super(code, message, 400);
    this.attrType = attrType;
  }
}

export type StunEncodeErrorCode =
  /** An attribute value over 65535 bytes or over its RFC limit. */
  | 'STUN_VALUE_TOO_LONG'
  /** The message would exceed the 16-bit length field. */
  | 'STUN_MESSAGE_TOO_LONG'
  /** An IP address string that does not match its family, or a bad port. */
  | 'STUN_BAD_ADDRESS'
  /** Any other value outside its range (type, error code, transaction id length …). */
  | 'STUN_BAD_VALUE';

/** Thrown by the writer: these are programming errors of the caller, not bad input from the net. */
export class StunEncodeError extends P2pdError {
  declare readonly code: StunEncodeErrorCode;

  constructor(code: StunEncodeErrorCode, message: string) {
    super(code, message, 500);
  }
}
