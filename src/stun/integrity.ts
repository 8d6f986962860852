import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { FINGERPRINT_XOR, HEADER_LENGTH } from './constants.ts';
import type { StunMessage } from './message.ts';

/**
 * MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5), MESSAGE-INTEGRITY-SHA256 (§14.6), FINGERPRINT
 * (§14.7) and the keys of the credential mechanisms (§9.1.2, §9.2.2).
 *
 * Strings are used as their UTF-8 bytes: no SASLprep (RFC 5389) or OpaqueString (RFC 8265)
 * preparation. Credentials that need it (non-ASCII spaces, compatibility characters) must be
 * stored already prepared: the RFC 5769 §2.4 password "The\u00ADM\u00AAtr\u2168" is given here
 * as "TheMatrIX".
 */

export type PasswordAlgorithmName = 'md5' | 'sha256';

/** RFC 8489 §9.2.2: MD5 or SHA-256 of username ":" realm ":" password. */
export function longTermKey(username: string, realm: string, password: string, algo: PasswordAlgorithmName = 'md5'): Buffer {
  return createHash(algo === 'md5' ? 'md5' : 'sha256').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** RFC 8489 §9.1.2: the password itself (UTF-8 bytes, see the note above on preparation). */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(password, 'utf8');
}

// Header copy whose length field is rewritten; createHmac().update copies it at once, so one
// scratch serves every call.
const header = Buffer.alloc(HEADER_LENGTH);

/**
 * HMAC over `buf[0, attrStart)` as if the message ended with an attribute of `valueLength`
 * bytes at `attrStart` (RFC 8489 §14.5: the length field then counts up to that attribute).
 */
export function integrityDigest(
  hash: 'sha1' | 'sha256',
  key: Buffer,
  buf: Buffer,
  attrStart: number,
  valueLength: number,
): Buffer {
  buf.copy(header, 0, 0, HEADER_LENGTH);
  header.writeUInt16BE(attrStart - HEADER_LENGTH + 4 + valueLength, 2);
  return createHmac(hash, key).update(header).update(buf.subarray(HEADER_LENGTH, attrStart)).digest();
}

function check(msg: StunMessage, i: number, hash: 'sha1' | 'sha256', key: Buffer): boolean {
  if (i < 0) return false;
  const value = msg.attrOffsets[i]!;
  const len = msg.attrLengths[i]!;
  const digest = integrityDigest(hash, key, msg.buf, value - 4, len);
  // MESSAGE-INTEGRITY-SHA256 may be truncated to its first 16..32 bytes (RFC 8489 §14.6).
  return timingSafeEqual(digest.subarray(0, len), msg.buf.subarray(value, value + len));
}

/** False when the message has no MESSAGE-INTEGRITY or it does not match `key`. */
export function checkMessageIntegrity(msg: StunMessage, key: Buffer): boolean {
  return check(msg, msg.integrityIndex, 'sha1', key);
}

/** False when the message has no MESSAGE-INTEGRITY-SHA256 or it does not match `key`. */
export function checkMessageIntegritySha256(msg: StunMessage, key: Buffer): boolean {
  return check(msg, msg.integritySha256Index, 'sha256', key);
}

/** CRC-32 of `buf[start, attrStart)` XOR 0x5354554e (RFC 8489 §14.7): a message at `start`. */
export function fingerprintValue(buf: Buffer, attrStart: number, start = 0): number {
  return (crc32(buf.subarray(start, attrStart)) ^ FINGERPRINT_XOR) >>> 0;
}

/** False when the message has no FINGERPRINT or it does not match. */
export function checkFingerprint(msg: StunMessage): boolean {
  const i = msg.fingerprintIndex;
  if (i < 0) return false;
  const value = msg.attrOffsets[i]!;
  return fingerprintValue(msg.buf, value - 4) === msg.buf.readUInt32BE(value);
}
