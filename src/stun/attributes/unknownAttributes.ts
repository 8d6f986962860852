import { StunDecodeError } from '../errors.ts';
import type { StunMessage } from '../message.ts';

/** UNKNOWN-ATTRIBUTES (RFC 8489 §14.13): a list of 16-bit attribute types. */
export function readUnknownAttributes(msg: StunMessage, i: number): number[] {
  const len = msg.attrLengths[i]!;
  const off = msg.attrOffsets[i]!;
  if ((len & 1) !== 0) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `UNKNOWN-ATTRIBUTES of ${len} bytes`, msg.attrTypes[i]);
  }
  const types = new Array<number>(len >> 1);
  for (let k = 0; k < types.length; k++) types[k] = msg.buf.readUInt16BE(off + 2 * k);
  return types;
}
