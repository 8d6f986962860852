/**
 * The two outcomes of the STUN codec that are errors, with their codes from the catalogue
 * (src/errors.ts). Decoding throws only {@link StunDecodeError}: bad bytes from the network, which
 * a server answers with 400 Bad Request (or drops, for an indication) and counts. Encoding throws
 * {@link StunEncodeError}: a bug of the caller.
 */
import { P2pdError } from '../errors.ts';

export type StunDecodeErrorCode =
  | 'STUN_TOO_SHORT' | 'STUN_NOT_STUN' | 'STUN_BAD_COOKIE' | 'STUN_BAD_LENGTH' | 'STUN_BAD_ATTRIBUTE'
  | 'STUN_BAD_ADDRESS_FAMILY' | 'STUN_VALUE_TOO_LONG' | 'STUN_BAD_UTF8' | 'STUN_BAD_INTEGRITY' | 'STUN_BAD_FINGERPRINT';

export class StunDecodeError extends P2pdError<StunDecodeErrorCode> {
  /** The attribute type concerned, or -1 when the error is about the message itself. */
  readonly attrType: number;

  constructor(code: StunDecodeErrorCode, message: string, attrType = -1) {
    super(code, message);
    this.attrType = attrType;
  }
}

export type StunEncodeErrorCode = 'STUN_VALUE_TOO_LONG' | 'STUN_MESSAGE_TOO_LONG' | 'STUN_BAD_ADDRESS' | 'STUN_BAD_VALUE';

export class StunEncodeError extends P2pdError<StunEncodeErrorCode> {}
