import { isUtf8 } from 'node:buffer';
import { StunDecodeError } from '../errors.ts';

/** Checks that an attribute value is exactly `length` bytes. */
export function expectLength(value: Buffer, length: number, name: string, attrType = -1): void {
  if (value.length !== length) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `${name} of ${value.length} bytes, expected ${length}`, attrType);
  }
}

/** A 32-bit unsigned value (LIFETIME, PRIORITY, CONNECTION-ID …). */
export function readUint32(value: Buffer, name = '32-bit attribute', attrType = -1): number {
  expectLength(value, 4, name, attrType);
  return value.readUInt32BE(0);
}

/** UTF-8 text, refused if over `maxBytes` or not valid UTF-8. */
export function readUtf8(value: Buffer, maxBytes: number, name: string, attrType = -1): string {
  if (value.length > maxBytes) {
    throw new StunDecodeError('STUN_VALUE_TOO_LONG', `${name} of ${value.length} bytes, at most ${maxBytes}`, attrType);
  }
  if (!isUtf8(value)) throw new StunDecodeError('STUN_BAD_UTF8', `${name} is not UTF-8`, attrType);
  return value.toString('utf8');
}
