/**
 * Keys for 5-tuples and peer addresses (docs/turn.md "Workers and speed": numbers, not strings).
 *
 * An allocation is identified by its 5-tuple (RFC 8656 §2): client address and port, server
 * address and port, transport. Over UDP the server side is one of our listening sockets, given
 * a small slot number, so an IPv4 client's 5-tuple is `slot * 2^48 + ip * 2^16 + port` — below
 * 2^53, an exact double. IPv6 clients use a string key (rare, and never on the relay path's
 * per-packet lookups except their own). TCP/TLS allocations are keyed by their connection.
 */

const TWO_16 = 0x10000;
const TWO_48 = 0x1000000000000;

/**
 * A dotted-quad IPv4 address as an unsigned 32-bit number, or -1 if `s` is not one. No objects,
 * no regular expression: it runs for every packet a peer sends.
 */
export function ipv4ToNumber(s: string): number {
  let value = 0;
  let part = 0;
  let parts = 0;
  let digits = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || parts === 3) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || parts !== 3) return -1;
  return value * 256 + part;
}

export function numberToIpv4(n: number): string {
  return `${Math.floor(n / 0x1000000) & 0xff}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** 5-tuple key of an IPv4 UDP client on listening socket `slot` (0-31). */
export function udpTupleKey(slot: number, ip: number, port: number): number {
  return slot * TWO_48 + ip * TWO_16 + port;
}

/** 5-tuple key of an IPv6 UDP client (a string: IPv6 addresses do not fit a double). */
export function udp6TupleKey(slot: number, address: string, port: number): string {
  return `${slot}|${address}|${port}`;
}

/** Key of an IPv4 peer transport address (channel bindings): `ip * 2^16 + port`. */
export function peerKey4(ip: number, port: number): number {
  return ip * TWO_16 + port;
}

/** Key of an IPv6 peer transport address. */
export function peerKey6(address: string, port: number): string {
  return `[${address}]:${port}`;
}
