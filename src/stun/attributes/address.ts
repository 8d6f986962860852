import { MAGIC_COOKIE } from '../constants.ts';
import { StunDecodeError, StunEncodeError } from '../errors.ts';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../ip.ts';
import type { StunMessage } from '../message.ts';

/**
 * MAPPED-ADDRESS family (RFC 8489 §14.1, §14.2): MAPPED-ADDRESS, ALTERNATE-SERVER,
 * RESPONSE-ORIGIN, OTHER-ADDRESS (plain) and XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
 * XOR-RELAYED-ADDRESS (XOR-ed with the magic cookie and transaction id).
 */
export interface TransportAddress {
  family: 4 | 6;
  /** Dotted quad, or IPv6 text as dgram reports it (see `ip.ts`). */
  address: string;
  port: number;
}

const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
const COOKIE_HIGH = MAGIC_COOKIE >>> 16;

// Scratch for un-XOR-ing an IPv6 address before formatting it.
const scratch = Buffer.alloc(16);

function readAny(msg: StunMessage, i: number, xor: boolean): TransportAddress {
  const buf = msg.buf;
  const type = msg.attrTypes[i]!;
  const len = msg.attrLengths[i]!;
  const off = msg.attrOffsets[i]!;
  if (len < 4) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `address of ${len} bytes`, type);
  // The first byte is reserved: "MUST be ignored by receivers" (RFC 8489 §14.1).
  const family = buf[off + 1]!;
  let port = buf.readUInt16BE(off + 2);
  if (xor) port ^= COOKIE_HIGH;
  if (family === FAMILY_IPV4) {
    if (len !== 8) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `IPv4 address of ${len} bytes`, type);
    if (!xor) return { family: 4, address: formatIPv4(buf, off + 4), port };
    // XOR with the cookie: bytes 4..7 of the header.
    const a = buf[off + 4]! ^ buf[4]!;
    const b = buf[off + 5]! ^ buf[5]!;
    const c = buf[off + 6]! ^ buf[6]!;
    const d = buf[off + 7]! ^ buf[7]!;
    return { family: 4, address: `${a}.${b}.${c}.${d}`, port };
  }
  if (family === FAMILY_IPV6) {
    if (len !== 20) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `IPv6 address of ${len} bytes`, type);
    if (!xor) return { family: 6, address: formatIPv6(buf, off + 4), port };
    // XOR with cookie || transaction id: bytes 4..19 of the header.
    for (let k = 0; k < 16; k++) scratch[k] = buf[off + 4 + k]! ^ buf[4 + k]!;
    return { family: 6, address: formatIPv6(scratch, 0), port };
  }
  throw new StunDecodeError('STUN_BAD_ADDRESS_FAMILY', `address family 0x${family.toString(16)}`, type);
}

/** MAPPED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS. */
export function readAddress(msg: StunMessage, i: number): TransportAddress {
  return readAny(msg, i, false);
}

/** XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS. */
export function readXorAddress(msg: StunMessage, i: number): TransportAddress {
  return readAny(msg, i, true);
}

export function addressValueLength(addr: TransportAddress): number {
  return addr.family === 4 ? 8 : 20;
}

/**
 * Writes the value of an address attribute at `offset` of `message`, a STUN message whose
 * header (cookie and transaction id, used when `xor`) is at offset 0.
 */
export function writeAddressValue(message: Buffer, offset: number, addr: TransportAddress, xor: boolean): void {
  const port = addr.port;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new StunEncodeError('STUN_BAD_ADDRESS', `port ${port}`);
  }
  message[offset] = 0;
  if (addr.family === 4) {
    message[offset + 1] = FAMILY_IPV4;
    if (!parseIPv4(addr.address, message, offset + 4)) {
      throw new StunEncodeError('STUN_BAD_ADDRESS', `not an IPv4 address: ${addr.address}`);
    }
  } else if (addr.family === 6) {
    message[offset + 1] = FAMILY_IPV6;
    if (!parseIPv6(addr.address, message, offset + 4)) {
      throw new StunEncodeError('STUN_BAD_ADDRESS', `not an IPv6 address: ${addr.address}`);
    }
  } else {
    throw new StunEncodeError('STUN_BAD_ADDRESS', `address family ${String(addr.family)}`);
  }
  message.writeUInt16BE(xor ? port ^ COOKIE_HIGH : port, offset + 2);
  if (xor) {
    const n = addr.family === 4 ? 4 : 16;
    for (let k = 0; k < n; k++) message[offset + 4 + k]! ^= message[4 + k]!;
  }
}
