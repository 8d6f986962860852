import { Attr } from '../constants.ts';
import { StunDecodeError } from '../errors.ts';

/** UNKNOWN-ATTRIBUTES (RFC 8489 §14.13): a list of 16-bit attribute types. */
export function readUnknownAttributes(value: Buffer): number[] {
  const len = value.length;
  if ((len & 1) !== 0) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `UNKNOWN-ATTRIBUTES of ${len} bytes`, Attr.UnknownAttributes);
  }
  const types = new Array<number>(len >> 1);
  for (let k = 0; k < types.length; k++) types[k] = value.readUInt16BE(2 * k);
  return types;
}
