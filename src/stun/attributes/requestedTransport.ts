import { Attr } from '../constants.ts';
import { StunEncodeError } from '../errors.ts';
import { readUint32 } from './value.ts';

/** REQUESTED-TRANSPORT (RFC 8656 §18.11, RFC 6062 §6.1): an IP protocol number, then 3 bytes RFFU. */
export const TransportProtocol = {
  TCP: 6,
  UDP: 17,
} as const;
export type TransportProtocol = (typeof TransportProtocol)[keyof typeof TransportProtocol];

/** The protocol number as sent (the server answers 442 for ones it does not relay). */
export function readRequestedTransport(value: Buffer): number {
  return readUint32(value, 'REQUESTED-TRANSPORT', Attr.RequestedTransport) >>> 24;
}

/** The 32-bit value, for `MessageWriter.addUint32(Attr.RequestedTransport, …)`. */
export function requestedTransportValue(protocol: number): number {
  if (!Number.isInteger(protocol) || protocol < 0 || protocol > 0xff) {
    throw new StunEncodeError('STUN_BAD_VALUE', `protocol ${protocol}`);
  }
  return protocol * 0x1000000;
}
