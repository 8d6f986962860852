import { Attr } from '../constants.ts';
import { StunDecodeError, StunEncodeError } from '../errors.ts';
import { expectLength } from './value.ts';

/**
 * REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.10) and ADDITIONAL-ADDRESS-FAMILY (§18.12): a family
 * byte (0x01 IPv4, 0x02 IPv6), then 3 bytes RFFU.
 */
export function readAddressFamily(value: Buffer): 4 | 6 {
  expectLength(value, 4, 'address family', Attr.RequestedAddressFamily);
  const family = value[0]!;
  if (family === 0x01) return 4;
  if (family === 0x02) return 6;
  throw new StunDecodeError('STUN_BAD_ADDRESS_FAMILY', `address family 0x${family.toString(16)}`, Attr.RequestedAddressFamily);
}

/** The 32-bit value, for `MessageWriter.addUint32(Attr.RequestedAddressFamily, …)`. */
export function addressFamilyValue(family: 4 | 6): number {
  if (family !== 4 && family !== 6) throw new StunEncodeError('STUN_BAD_VALUE', `address family ${String(family)}`);
  return (family === 4 ? 0x01 : 0x02) * 0x1000000;
}
