import { isUtf8 } from 'node:buffer';
import { StunDecodeError } from '../errors.ts';
import type { StunMessage } from '../message.ts';

/** Offset of attribute i's value after checking that it is exactly `length` bytes. */
export function fixedValue(msg: StunMessage, i: number, length: number, name: string): number {
  const len = msg.attrLengths[i]!;
  if (len !== length) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `${name} of ${len} bytes, expected ${length}`, msg.attrTypes[i]);
  }
  return msg.attrOffsets[i]!;
}

/** A 32-bit unsigned value (LIFETIME, PRIORITY, CONNECTION-ID …). */
export function readUint32(msg: StunMessage, i: number): number {
  return msg.buf.readUInt32BE(fixedValue(msg, i, 4, 'attribute'));
}

/** The UTF-8 text in `buf[start, start + len)`, refused if over `maxBytes` or not UTF-8. */
export function readUtf8(
  buf: Buffer,
  start: number,
  len: number,
  maxBytes: number,
  name: string,
  attrType: number,
): string {
  if (len > maxBytes) {
    throw new StunDecodeError('STUN_VALUE_TOO_LONG', `${name} of ${len} bytes, at most ${maxBytes}`, attrType);
  }
  const bytes = buf.subarray(start, start + len);
  if (!isUtf8(bytes)) throw new StunDecodeError('STUN_BAD_UTF8', `${name} is not UTF-8`, attrType);
  return bytes.toString('utf8');
}
