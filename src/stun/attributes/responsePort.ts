import { Attr } from '../constants.ts';
import { StunEncodeError } from '../errors.ts';
import { readUint32 } from './value.ts';

/** RESPONSE-PORT (RFC 5780 §7.5): a 16-bit port, then 2 bytes of padding. */
export function readResponsePort(value: Buffer): number {
  return readUint32(value, 'RESPONSE-PORT', Attr.ResponsePort) >>> 16;
}

/** The 32-bit value, for `MessageWriter.addUint32(Attr.ResponsePort, …)`. */
export function responsePortValue(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new StunEncodeError('STUN_BAD_VALUE', `port ${port}`);
  return port * 0x10000;
}
