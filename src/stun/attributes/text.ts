import { Attr } from '../constants.ts';
import { readUtf8 } from './value.ts';

/**
 * USERNAME, REALM, NONCE, SOFTWARE (RFC 8489 §14.3, §14.9, §14.10, §14.14): UTF-8 text.
 * Reading is lenient up to the RFC's decoding limits; writing keeps to the sending ones.
 * No SASLprep/OpaqueString processing is done (see `integrity.ts`).
 */

/** RFC 5389 §15.3 allowed "less than 513 bytes"; RFC 8489 peers send fewer than 509. */
export const MAX_USERNAME_BYTES = 512;
/** REALM, NONCE, SOFTWARE and the ERROR-CODE reason: "as long as 763 bytes when decoding". */
export const MAX_TEXT_BYTES = 763;
/** RFC 8489 §14.3: "fewer than 509 bytes". */
export const MAX_SEND_USERNAME_BYTES = 508;
/** RFC 8489: "fewer than 128 characters (which can be as long as 509 bytes when encoding them …)". */
export const MAX_SEND_TEXT_BYTES = 509;
export const MAX_SEND_TEXT_CHARS = 127;

export function readUsername(value: Buffer): string {
  return readUtf8(value, MAX_USERNAME_BYTES, 'USERNAME', Attr.Username);
}

export function readRealm(value: Buffer): string {
  return readUtf8(value, MAX_TEXT_BYTES, 'REALM', Attr.Realm);
}

export function readNonce(value: Buffer): string {
  return readUtf8(value, MAX_TEXT_BYTES, 'NONCE', Attr.Nonce);
}

export function readSoftware(value: Buffer): string {
  return readUtf8(value, MAX_TEXT_BYTES, 'SOFTWARE', Attr.Software);
}

export interface TextLimit {
  bytes: number;
  chars: number;
}

const USERNAME_LIMIT: TextLimit = { bytes: MAX_SEND_USERNAME_BYTES, chars: Infinity };
const TEXT_LIMIT: TextLimit = { bytes: MAX_SEND_TEXT_BYTES, chars: MAX_SEND_TEXT_CHARS };

/** The sending limits of a text attribute type, or undefined for types without one. */
export function sendLimit(type: number): TextLimit | undefined {
  switch (type) {
    case Attr.Username:
      return USERNAME_LIMIT;
    case Attr.Realm:
    case Attr.Nonce:
    case Attr.Software:
      return TEXT_LIMIT;
    default:
      return undefined;
  }
}

/** Unicode characters (code points) in `s`. */
export function charCount(s: string): number {
  let n = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    // A high surrogate followed by a low one is one character.
    if (c >= 0xd800 && c <= 0xdbff && k + 1 < s.length) {
      const d = s.charCodeAt(k + 1);
      if (d >= 0xdc00 && d <= 0xdfff) k++;
    }
    n++;
  }
  return n;
}
