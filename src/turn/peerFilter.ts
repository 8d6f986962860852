/**
 * Which peers the relay may talk to (docs/security.md): deny by default every range
 * that is not the public Internet — loopback, unspecified, private, CGNAT, link-local (cloud
 * metadata at 169.254.169.254), multicast, broadcast, documentation, benchmarking and reserved
 * ranges, their IPv6 equivalents — and IPv4 written inside IPv6 (IPv4-mapped ::ffff:0:0/96,
 * NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as the IPv4 address it carries. An operator opens
 * a range with --allow-peer; an allowed IPv4 range also opens its embedded IPv6 forms. An
 * operator closes more ranges with --deny-peer, which wins over --allow-peer (and, like it, covers
 * the embedded IPv6 forms of an IPv4 range).
 *
 * Ranges only: the server's own addresses and the relay-to-relay exception are peerPolicy.ts.
 *
 * Checked when a permission is installed (CreatePermission, ChannelBind, Send): packets then only
 * flow to and from addresses that hold a permission, so the relay path never asks again.
 */
import { parseIPv6 } from '../stun/index.ts';
import { ipv4ToNumber } from './fiveTuple.ts';

export interface PeerCidr {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
}

/** IPv4 ranges denied by default (RFC 6890 special-purpose registry and friends). */
export const DENIED_IPV4: readonly string[] = [
  '0.0.0.0/8', // "this network", incl. 0.0.0.0
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // RFC 6598 CGNAT
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata
  '172.16.0.0/12', // RFC 1918
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // TEST-NET-1
  '192.88.99.0/24', // 6to4 relay anycast (deprecated)
  '192.168.0.0/16', // RFC 1918
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // TEST-NET-2
  '203.0.113.0/24', // TEST-NET-3
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, incl. 255.255.255.255 broadcast
];

/** IPv6 ranges denied by default, apart from the three forms judged by their IPv4 address. */
export const DENIED_IPV6: readonly string[] = [
  '::/96', // unspecified, loopback, IPv4-compatible (deprecated)
  '::ffff:0:0:0/96', // IPv4-translated (SIIT)
  '64:ff9b:1::/48', // local-use NAT64
  '100::/64', // discard-only
  '2001::/23', // IETF protocol assignments: Teredo, benchmarking, ORCHID
  '2001:db8::/32', // documentation
  '3fff::/20', // documentation (RFC 9637)
  'fc00::/7', // unique local
  'fe80::/10', // link-local
  'fec0::/10', // site-local (deprecated)
  'ff00::/8', // multicast
];

interface Range4 {
  readonly start: number;
  readonly end: number;
}

interface Range6 {
  readonly bytes: Buffer;
  readonly prefix: number;
}

function range4(address: string, prefix: number): Range4 {
  const ip = ipv4ToNumber(address);
  if (ip < 0) throw new RangeError(`not an IPv4 address: ${address}`);
  const size = 2 ** (32 - prefix);
  const start = Math.floor(ip / size) * size;
  return { start, end: start + size - 1 };
}

function range6(address: string, prefix: number): Range6 {
  const bytes = Buffer.alloc(16);
  if (!parseIPv6(address, bytes, 0)) throw new RangeError(`not an IPv6 address: ${address}`);
  return { bytes, prefix };
}

function parseCidrText(text: string): PeerCidr {
  const slash = text.indexOf('/');
  const address = text.slice(0, slash);
  return { family: address.includes(':') ? 6 : 4, address, prefix: Number(text.slice(slash + 1)) };
}

function inRange6(addr: Buffer, r: Range6): boolean {
  const full = r.prefix >> 3;
  for (let k = 0; k < full; k++) if (addr[k] !== r.bytes[k]) return false;
  const bits = r.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((addr[full]! ^ r.bytes[full]!) & mask) === 0;
}

const MAPPED = range6('::ffff:0:0', 96);
const NAT64 = range6('64:ff9b::', 96);
const SIX_TO_FOUR = range6('2002::', 16);

export class PeerFilter {
  private readonly deny4: Range4[];
  private readonly deny6: Range6[];
  private readonly allow4: Range4[] = [];
  private readonly allow6: Range6[] = [];
  /** --deny-peer: checked before everything else. */
  private readonly operatorDeny4: Range4[] = [];
  private readonly operatorDeny6: Range6[] = [];
  private readonly scratch = Buffer.alloc(16);

  constructor(allow: readonly PeerCidr[] = [], deny: readonly PeerCidr[] = []) {
    this.deny4 = DENIED_IPV4.map(parseCidrText).map((c) => range4(c.address, c.prefix));
    this.deny6 = DENIED_IPV6.map(parseCidrText).map((c) => range6(c.address, c.prefix));
    for (const c of allow) {
      if (c.family === 4) this.allow4.push(range4(c.address, c.prefix));
      else this.allow6.push(range6(c.address, c.prefix));
    }
    for (const c of deny) {
      if (c.family === 4) this.operatorDeny4.push(range4(c.address, c.prefix));
      else this.operatorDeny6.push(range6(c.address, c.prefix));
    }
  }

  /** May the relay send to and receive from this peer address? */
  isAllowed(family: 4 | 6, address: string): boolean {
    const v = this.judge(family, address);
    return v === 'allowed' || v === 'allowed_range';
  }

  /**
   * The verdict with its reason: `deny_peer` (an operator's --deny-peer range), `allowed_range`
   * (inside an --allow-peer range), `denied` (a default range, or not an address), `allowed`
   * (public). peerPolicy.ts needs the difference between an explicit and a default verdict.
   */
  judge(family: 4 | 6, address: string): 'deny_peer' | 'allowed_range' | 'denied' | 'allowed' {
    if (family === 4) {
      const ip = ipv4ToNumber(address);
      return ip < 0 ? 'denied' : this.judge4(ip);
    }
    const a = this.scratch;
    if (!parseIPv6(address, a, 0)) return 'denied';
    for (const r of this.operatorDeny6) if (inRange6(a, r)) return 'deny_peer';
    const v4 = embeddedIpv4(a);
    if (v4 >= 0 && this.judge4(v4) === 'deny_peer') return 'deny_peer';
    for (const r of this.allow6) if (inRange6(a, r)) return 'allowed_range';
    // IPv4 written inside IPv6 is judged as that IPv4 address.
    if (v4 >= 0) return this.judge4(v4);
    for (const r of this.deny6) if (inRange6(a, r)) return 'denied';
    return 'allowed';
  }

  private judge4(ip: number): 'deny_peer' | 'allowed_range' | 'denied' | 'allowed' {
    for (const r of this.operatorDeny4) if (ip >= r.start && ip <= r.end) return 'deny_peer';
    for (const r of this.allow4) if (ip >= r.start && ip <= r.end) return 'allowed_range';
    for (const r of this.deny4) if (ip >= r.start && ip <= r.end) return 'denied';
    return 'allowed';
  }
}

/**
 * The IPv4 address written inside an IPv6 one (IPv4-mapped, NAT64, 6to4) as a number, or -1.
 * peerPolicy.ts judges the server's own IPv4 addresses in these spellings too.
 */
export function embeddedIpv4(a: Buffer): number {
  if (inRange6(a, MAPPED) || inRange6(a, NAT64)) return a.readUInt32BE(12);
  if (inRange6(a, SIX_TO_FOUR)) return a.readUInt32BE(2);
  return -1;
}
