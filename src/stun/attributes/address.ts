import { MAGIC_COOKIE } from '../constants.ts';
import { StunDecodeError, StunEncodeError } from '../errors.ts';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../ip.ts';

/**
 * The MAPPED-ADDRESS family (RFC 8489 §14.1, §14.2): MAPPED-ADDRESS, ALTERNATE-SERVER,
 * RESPONSE-ORIGIN, OTHER-ADDRESS are plain; XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
 * XOR-RELAYED-ADDRESS are XOR-ed with the magic cookie (and the transaction id for IPv6).
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
const COOKIE = Buffer.from([0x21, 0x12, 0xa4, 0x42]);

// Scratch for un-XOR-ing an IPv6 address before formatting it.
const scratch = Buffer.alloc(16);

function checkShape(value: Buffer): number {
  const len = value.length;
  if (len < 4) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `address of ${len} bytes`);
  // The first byte is reserved: "MUST be ignored by receivers" (RFC 8489 §14.1).
  const family = value[1]!;
  if (family === FAMILY_IPV4) {
    if (len !== 8) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `IPv4 address of ${len} bytes`);
  } else if (family === FAMILY_IPV6) {
    if (len !== 20) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `IPv6 address of ${len} bytes`);
  } else {
    throw new StunDecodeError('STUN_BAD_ADDRESS_FAMILY', `address family 0x${family.toString(16)}`);
  }
  return family;
}

/** MAPPED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS. */
export function readAddress(value: Buffer): TransportAddress {
  const family = checkShape(value);
  const port = value.readUInt16BE(2);
  return family === FAMILY_IPV4
    ? { family: 4, address: formatIPv4(value, 4), port }
    : { family: 6, address: formatIPv6(value, 4), port };
}

/** XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS; `transactionId` of the message. */
export function readXorAddress(value: Buffer, transactionId: Buffer): TransportAddress {
  const family = checkShape(value);
  const port = value.readUInt16BE(2) ^ COOKIE_HIGH;
  if (family === FAMILY_IPV4) {
    const a = value[4]! ^ 0x21;
    const b = value[5]! ^ 0x12;
    const c = value[6]! ^ 0xa4;
    const d = value[7]! ^ 0x42;
    return { family: 4, address: `${a}.${b}.${c}.${d}`, port };
  }
  for (let k = 0; k < 4; k++) scratch[k] = value[4 + k]! ^ COOKIE[k]!;
  for (let k = 0; k < 12; k++) scratch[4 + k] = value[8 + k]! ^ transactionId[k]!;
  return { family: 6, address: formatIPv6(scratch, 0), port };
}

/**
 * Writes an XOR address value at `offset` of `message`, whose header (magic cookie and
 * transaction id, the XOR key) is already at `start`, from an address held as bytes: `family`,
 * its 4 or 16 bytes in network order at `addr[addrOff]`, and `port`. The same value as
 * `writeAddressValue(..., xor = true)` writes for that address as text.
 */
export function writeXorAddressBytes(message: Buffer, start: number, offset: number, family: 4 | 6, addr: Uint8Array, addrOff: number, port: number): void {
  message[offset] = 0;
  message[offset + 1] = family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  message[offset + 2] = (port >>> 8) ^ (COOKIE_HIGH >>> 8);
  message[offset + 3] = (port & 0xff) ^ (COOKIE_HIGH & 0xff);
  const n = family === 4 ? 4 : 16;
  for (let k = 0; k < n; k++) message[offset + 4 + k] = addr[addrOff + k]! ^ message[start + 4 + k]!;
}

export function addressValueLength(addr: TransportAddress): number {
  return addr.family === 4 ? 8 : 20;
}

/**
 * Writes an address value at `offset` of `message`, a STUN message whose header is at offset 0
 * (its transaction id is the XOR key of an IPv6 `xor` address).
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
    // Bytes 4..19 of the header: magic cookie then transaction id.
    const n = addr.family === 4 ? 4 : 16;
    for (let k = 0; k < n; k++) message[offset + 4 + k] = message[offset + 4 + k]! ^ message[4 + k]!;
  }
}
