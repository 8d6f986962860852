/**
 * STUN numbers: header layout, methods, classes and attribute types (RFC 8489, RFC 5780,
 * RFC 8656, RFC 6062, RFC 8016, RFC 8445).
 */

/** RFC 8489 §6: fixed value in bytes 4..7 of every STUN message. */
export const MAGIC_COOKIE = 0x2112a442;
/** RFC 8489 §5: type(2) + length(2) + magic cookie(4) + transaction id(12). */
export const HEADER_LENGTH = 20;
export const TRANSACTION_ID_LENGTH = 12;
/** RFC 8489 §14.7: the CRC-32 of FINGERPRINT is XOR-ed with this ("STUN"). */
export const FINGERPRINT_XOR = 0x5354554e;
/** The length field is 16 bits and counts 4-byte aligned attributes. */
export const MAX_BODY_LENGTH = 0xfffc;

export const Method = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
  Connect: 0x00a,
  ConnectionBind: 0x00b,
  ConnectionAttempt: 0x00c,
} as const;
export type Method = (typeof Method)[keyof typeof Method];

export const MessageClass = {
  Request: 0,
  Indication: 1,
  SuccessResponse: 2,
  ErrorResponse: 3,
} as const;
export type MessageClass = (typeof MessageClass)[keyof typeof MessageClass];

/**
 * RFC 8489 §5: the 12 method bits and 2 class bits are interleaved as
 * M11..M7 C1 M6..M4 C0 M3..M0 in the 14 low bits of the type.
 */
export function messageType(method: number, cls: number): number {
  return (
    (method & 0x000f) |
    ((method & 0x0070) << 1) |
    ((method & 0x0f80) << 2) |
    ((cls & 0b01) << 4) |
    ((cls & 0b10) << 7)
  );
}

export function methodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
}

export function classOf(type: number): number {
  return ((type >> 4) & 0b01) | ((type >> 7) & 0b10);
}

export const Attr = {
  // RFC 8489 §18.3.1 comprehension-required
  MappedAddress: 0x0001,
  /** Reserved since RFC 5389; RFC 3489 servers may still send it. */
  ResponseAddress: 0x0002,
  /** RFC 5780 §7.2. */
  ChangeRequest: 0x0003,
  /** Reserved since RFC 5389 (RFC 3489). */
  SourceAddress: 0x0004,
  /** Reserved since RFC 5389 (RFC 3489): the classic NAT test reads it from old servers. */
  ChangedAddress: 0x0005,
  Username: 0x0006,
  /** Reserved since RFC 5389 (RFC 3489). */
  Password: 0x0007,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  /** Reserved since RFC 5389 (RFC 3489). */
  ReflectedFrom: 0x000b,
  // RFC 8656 §18 (TURN)
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  ReservationToken: 0x0022,
  // RFC 8445 §16.1 (ICE)
  Priority: 0x0024,
  UseCandidate: 0x0025,
  // RFC 5780 §7
  Padding: 0x0026,
  ResponsePort: 0x0027,
  // RFC 6062 §6.2.1 (TURN over TCP)
  ConnectionId: 0x002a,
  // RFC 8489 §18.3.2 comprehension-optional
  AdditionalAddressFamily: 0x8000,
  AddressErrorCode: 0x8001,
  PasswordAlgorithms: 0x8002,
  AlternateDomain: 0x8003,
  Icmp: 0x8004,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
  /** RFC 8016 §3.4 (TURN mobility). */
  MobilityTicket: 0x8030,
} as const;
export type Attr = (typeof Attr)[keyof typeof Attr];

/** RFC 8489 §14: types 0x0000-0x7FFF must be understood or the request fails with 420. */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

const RFC3489_ONLY: ReadonlySet<number> = new Set([
  Attr.ResponseAddress,
  Attr.SourceAddress,
  Attr.ChangedAddress,
  Attr.Password,
  Attr.ReflectedFrom,
]);

const KNOWN: ReadonlySet<number> = new Set(
  Object.values(Attr).filter((t) => !RFC3489_ONLY.has(t)),
);

/**
 * Attribute types p2pd understands: every type of {@link Attr} except the RFC 3489 ones that
 * RFC 5389 reserved. A request with a comprehension-required type outside this set gets 420
 * with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1); a role may still refuse types it does not serve.
 */
export function isKnownAttribute(type: number): boolean {
  return KNOWN.has(type);
}
