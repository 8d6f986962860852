/**
 * Which peer transport addresses the relay may send to (docs/security.md,
 * docs/turn.md "Peer policy"): the ranges of peerFilter.ts, plus the server's own addresses.
 *
 * - The server's own addresses (--listen, --external-ip, --alt-ip, --relay-ip/--relay-ip6, every
 *   interface address when one of them is a wildcard) are denied as peers: through the relay a
 *   client must not reach the server's own UDP services (its STUN port, say) with the server's
 *   own address as source.
 * - Except live relay ports: relaying from one allocation to another of this node (any worker's:
 *   the node's book of ports tells every worker, see livePorts.ts), or into the relay port range
 *   of another TURN node of the cluster (its registry entry), is how two symmetric NATs meet, and
 *   it must work whatever range the relay address is in (a private-address host, a namespace).
 * - --deny-peer wins over everything, the relay exception included. An --allow-peer range that
 *   holds an own address opens its other ports too, but never the node's STUN/TURN ports.
 *
 * RFC 8656 §9: a permission is per IP address (CreatePermission has no port), so the port is
 * judged where data goes to a 5-tuple: at ChannelBind (403), for each Send indication (dropped and
 * counted: an indication has no answer) and, for channels to an own address, for each ChannelData
 * (the port may die after the bind). A peer that is not an own address costs one Map lookup per
 * Send indication and one boolean per ChannelData frame.
 */
import { formatIPv6, parseIPv6 } from '../stun/index.ts';
import { ipv4ToNumber } from './fiveTuple.ts';
import { embeddedIpv4, PeerFilter, type PeerCidr } from './peerFilter.ts';
import { POOL_SLOTS } from './reservations.ts';

/** Another TURN node of the cluster, as its registry entry tells (src/cluster/nodeInfo.ts). */
export interface RemoteRelay {
  /** Where its relay sockets are reached (its XOR-RELAYED-ADDRESS addresses). */
  readonly addresses: readonly string[];
  readonly minPort: number;
  readonly maxPort: number;
  /** Its STUN/TURN port (never opened, even inside an --allow-peer range). */
  readonly port: number;
}

export interface OwnAddresses {
  /** Every address of this node (relay addresses included). */
  readonly own: readonly string[];
  /**
   * Where this node's relay sockets are reached, per relay address (the book's pools, in its
   * order: reservations.ts): live relay ports of a pool there are peers.
   */
  readonly relay: readonly (readonly string[])[];
  /** This node's UDP service ports (STUN/TURN, RFC 5780 alternate). */
  readonly servicePorts: readonly number[];
}

/** What one own address allows (one object per address, built when the addresses change). */
interface OwnEntry {
  /** This node's relay sockets of one pool are reached here: where its live ports start in `livePorts` (-1: none). */
  selfBase: number;
  /** Relay port ranges of other TURN nodes reached here, as [min, max] pairs. */
  readonly remote: number[];
  /** Inside an --allow-peer range: every port but `servicePorts` is a peer. */
  opened: boolean;
  readonly servicePorts: number[];
}

export type PeerVerdict = 'allowed' | 'denied' | 'deny_peer' | 'own_address';

export class PeerPolicy {
  readonly filter: PeerFilter;
  private readonly self: OwnAddresses;
  /**
   * Live relay ports of this node, by slot (pool × 65536 + port, reservations.ts): 1 = an
   * allocation holds it (livePorts.ts fills it).
   */
  readonly livePorts: Uint8Array;
  private own4 = new Map<number, OwnEntry>();
  private own6 = new Map<string, OwnEntry>();
  private readonly scratch = Buffer.alloc(16);
  /** Called after the own-address tables change (the TURN server re-marks its channels). */
  onChange: (() => void) | undefined;
  /**
   * Called when a live relay port dies (its book slot): the forwarding table drops channels that
   * reached an own address only through it (forwarder.ts).
   */
  onPortDead: ((slot: number) => void) | undefined;

  constructor(allow: readonly PeerCidr[], deny: readonly PeerCidr[], self: OwnAddresses) {
    this.filter = new PeerFilter(allow, deny);
    this.self = self;
    this.livePorts = new Uint8Array(POOL_SLOTS * Math.max(1, self.relay.length));
    this.setRemoteRelays([]);
  }

  /** The cluster's other TURN nodes changed (at a heartbeat): rebuilds the own-address tables. */
  setRemoteRelays(remotes: readonly RemoteRelay[]): void {
    const own4 = new Map<number, OwnEntry>();
    const own6 = new Map<string, OwnEntry>();
    const entry = (address: string): OwnEntry | undefined => {
      const ip4 = ipv4ToNumber(address);
      if (ip4 >= 0) return getOrMake(own4, ip4, () => this.newEntry(4, address));
      const text = this.canonical6(address);
      return text === undefined ? undefined : getOrMake(own6, text, () => this.newEntry(6, text));
    };
    for (const a of this.self.own) entry(a);
    this.self.relay.forEach((addresses, pool) => {
      for (const a of addresses) {
        const e = entry(a);
        if (e) e.selfBase = pool * POOL_SLOTS;
      }
    });
    for (const r of remotes) {
      for (const a of r.addresses) {
        const e = entry(a);
        if (!e) continue;
        e.remote.push(r.minPort, r.maxPort);
        if (!e.servicePorts.includes(r.port)) e.servicePorts.push(r.port);
      }
    }
    this.own4 = own4;
    this.own6 = own6;
    this.onChange?.();
  }

  private newEntry(family: 4 | 6, address: string): OwnEntry {
    return { selfBase: -1, remote: [], opened: this.filter.judge(family, address) === 'allowed_range', servicePorts: [...this.self.servicePorts] };
  }

  private canonical6(address: string): string | undefined {
    return parseIPv6(address, this.scratch, 0) ? formatIPv6(this.scratch, 0) : undefined;
  }

  /**
   * May a permission be installed for this peer IP (CreatePermission, ChannelBind)? An own
   * address is permitted when some of its ports are peers (a relay address, or opened by
   * --allow-peer); which ports is {@link mayReach}'s to say.
   */
  permits(family: 4 | 6, address: string): PeerVerdict {
    const verdict = this.filter.judge(family, address);
    if (verdict === 'deny_peer') return 'deny_peer';
    const e = this.ownEntry(family, address);
    if (e !== undefined) return e.selfBase >= 0 || e.remote.length > 0 || e.opened ? 'allowed' : 'own_address';
    if (family === 6) {
      const embedded = this.embeddedOwn(address);
      // Relay sockets are IPv6-only: these spellings reach our IPv4 address only through a
      // NAT64 or 6to4 gateway, never as a relay port. Open only inside an --allow-peer range.
      if (embedded !== undefined) return embedded.opened && verdict !== 'denied' ? 'allowed' : 'own_address';
    }
    return verdict === 'denied' ? 'denied' : 'allowed';
  }

  /** Is this IP one of the addresses whose ports are judged one by one? */
  isOwn(family: 4 | 6, address: string): boolean {
    return this.ownEntry(family, address) !== undefined;
  }

  /**
   * May data go to this peer transport address, given a permission for its IP? `ip4` is the IPv4
   * address as a number (-1 for IPv6 `address`). Runs per Send indication and per ChannelData
   * frame of a channel to an own address: no allocation.
   */
  mayReach(family: 4 | 6, ip4: number, address: string, port: number): boolean {
    const e = family === 4 ? this.own4.get(ip4) : this.own6.size === 0 ? undefined : this.own6.get(address);
    if (e === undefined) return true;
    if (e.selfBase >= 0 && this.livePorts[e.selfBase + port] === 1) return true;
    const r = e.remote;
    for (let i = 0; i < r.length; i += 2) if (port >= r[i]! && port <= r[i + 1]!) return true;
    return e.opened && !e.servicePorts.includes(port);
  }

  /** Marks a book slot's relay port live or dead (livePorts.ts); a death is told to `onPortDead`. */
  setLivePort(slot: number, live: boolean): void {
    const was = this.livePorts[slot] === 1;
    this.livePorts[slot] = live ? 1 : 0;
    if (was && !live) this.onPortDead?.(slot);
  }

  /**
   * The book slot of this node's relay port at this own address and port (whether live or not),
   * or -1 when the address holds none of this node's relay sockets.
   */
  relaySlot(family: 4 | 6, ip4: number, address: string, port: number): number {
    const e = family === 4 ? this.own4.get(ip4) : this.own6.size === 0 ? undefined : this.own6.get(address);
    return e === undefined || e.selfBase < 0 ? -1 : e.selfBase + port;
  }

  private ownEntry(family: 4 | 6, address: string): OwnEntry | undefined {
    if (family === 4) return this.own4.get(ipv4ToNumber(address));
    if (this.own6.size === 0) return undefined;
    const text = this.canonical6(address);
    return text === undefined ? undefined : this.own6.get(text);
  }

  /** The own IPv4 address written inside this IPv6 one (mapped, NAT64, 6to4): no relay exception. */
  private embeddedOwn(address: string): OwnEntry | undefined {
    if (!parseIPv6(address, this.scratch, 0)) return undefined;
    const v4 = embeddedIpv4(this.scratch);
    return v4 >= 0 ? this.own4.get(v4) : undefined;
  }
}

function getOrMake<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = make()));
  return v;
}
