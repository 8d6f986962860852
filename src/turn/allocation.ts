/**
 * An allocation (RFC 8656 §2.2): the relayed transport addresses a client holds on this server,
 * with its 5-tuple, credentials, lifetime, permissions and channel bindings. State only: the
 * manager creates and deletes allocations, the relay moves their packets.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { TransportAddress } from '../stun/index.ts';
import type { Principal } from './auth.ts';
import type { TokenBucket } from './bandwidth.ts';
import { createChannelBinding, type ChannelBinding } from './channelBinding.ts';
import { ipv4ToNumber, peerKey4, peerKey6 } from './fiveTuple.ts';
import { pruneExpired } from './permission.ts';
import type { RelayPort } from './relayPorts.ts';

/** A UDP socket that can hold sends until the end of the event-loop turn (BatchUdpSocket). */
export interface LaterSender {
  sendLater(msg: readonly Buffer[], port: number, address: string): void;
}

export interface RelayEndpoint {
  readonly port: RelayPort;
  /** The XOR-RELAYED-ADDRESS clients are told. */
  readonly address: TransportAddress;
}

/** What the manager knows when it creates an allocation: the fields the rest derive from. */
export type AllocationInit = Pick<Allocation, 'id' | 'tupleKey' | 'client' | 'udp' | 'stream' | 'principal' | 'quotaKey'
  | 'grant' | 'transactionId' | 'expiresAtSec' | 'bucket'>;

export class Allocation {
  readonly id: number;
  /** 5-tuple key for UDP clients (see fiveTuple.ts); undefined for TCP/TLS (keyed by connection). */
  readonly tupleKey: number | string | undefined;
  readonly client: TransportAddress;
  readonly udp: dgram.Socket | undefined;
  readonly stream: net.Socket | undefined;
  readonly principal: Principal;
  readonly quotaKey: string | undefined;
  readonly grant: number;
  /**
   * Of the Allocate that created it, as 12 latin1 characters: a retransmission gets the same
   * success again (RFC 8656 §7.2). Not a Buffer: a small one is a slice of a shared 64 KiB pool
   * slab, which each allocation kept alive for ~230 B of it.
   */
  readonly transactionId: string;
  /** Set once the relay sockets are bound, before the allocation is added to the manager. */
  relay4: RelayEndpoint | undefined;
  relay6: RelayEndpoint | undefined;
  readonly bucket: TokenBucket | undefined;
  /**
   * The client's UDP socket is Node's dgram, which may keep a buffer queued past `send` (the
   * batched listener socket copies at once and has no queue to ask about).
   */
  readonly udpMayQueue: boolean;
  /**
   * The client's UDP socket can hold datagrams until the end of the event-loop turn and send them
   * together (the batched listener's `sendLater`): relayed datagrams to clients go that way.
   */
  readonly udpSendLater: boolean;
  expiresAtSec: number;
  deleted = false;

  // Read-only to the rest: written only here, each a Map of its own from the first entry on and
  // the shared empty one again once pruned empty, so an allocation without peers holds no Map
  // (three empty Maps were ~600 B of every allocation), and the relay's lookups stay plain gets.
  /** IPv4 permissions: peer IP as a number → expiry. */
  perms4: ReadonlyMap<number, number> = NONE;
  /** IPv6 permissions: peer IP text → expiry (created on first use). */
  perms6: Map<string, number> | undefined;
  /** Channel number → binding. */
  channels: ReadonlyMap<number, ChannelBinding> = NONE;
  /** IPv4 peer (ip * 2^16 + port) → binding. */
  chan4: ReadonlyMap<number, ChannelBinding> = NONE;
  /** IPv6 peer "[ip]:port" → binding (created on first use). */
  chan6: Map<string, ChannelBinding> | undefined;

  /** Payload bytes relayed since the manager last looked (for the node's bps). */
  bytesRelayed = 0;
  /**
   * Payload bytes relayed over the allocation's life, and the seconds in which it relayed any:
   * folded in from `bytesRelayed` at each sweep (about once a second) and at delete, never per
   * packet. The usage meter reads them (usageMeter.ts).
   */
  bytesTotal = 0;
  relayingSec = 0;
  /** Its entry in the addon's forwarding table (forwarder.ts), or -1 before its first offer. */
  forwardId = -1;

  constructor(init: AllocationInit) {
    this.id = init.id;
    this.tupleKey = init.tupleKey;
    this.client = init.client;
    this.udp = init.udp;
    this.stream = init.stream;
    this.principal = init.principal;
    this.quotaKey = init.quotaKey;
    this.grant = init.grant;
    this.transactionId = init.transactionId;
    this.expiresAtSec = init.expiresAtSec;
    this.bucket = init.bucket;
    this.udpMayQueue = init.udp !== undefined && typeof (init.udp as Partial<dgram.Socket>).getSendQueueCount === 'function';
    this.udpSendLater = init.udp !== undefined && typeof (init.udp as Partial<LaterSender>).sendLater === 'function';
  }

  get sessionId(): string | undefined {
    return this.principal.sessionId;
  }

  relayFor(family: 4 | 6): RelayEndpoint | undefined {
    return family === 4 ? this.relay4 : this.relay6;
  }

  /** Installs or refreshes a permission for the peer's IP (RFC 8656 §9.1). */
  addPermission(family: 4 | 6, address: string, expiresAtSec: number): void {
    if (family === 4) (this.perms4 = own(this.perms4)).set(ipv4ToNumber(address), expiresAtSec);
    else (this.perms6 ??= new Map()).set(address, expiresAtSec);
  }

  /** Live and not yet pruned permissions (peer IPs). */
  get permissionCount(): number {
    return this.perms4.size + (this.perms6?.size ?? 0);
  }

  hasPermission(family: 4 | 6, address: string): boolean {
    return family === 4 ? this.perms4.has(ipv4ToNumber(address)) : this.perms6?.has(address) === true;
  }

  channelForPeer(family: 4 | 6, address: string, port: number): ChannelBinding | undefined {
    return family === 4 ? this.chan4.get(peerKey4(ipv4ToNumber(address), port)) : this.chan6?.get(peerKey6(address, port));
  }

  /**
   * Binds `number` to the peer or refreshes the binding (RFC 8656 §11.2). The caller has checked
   * that neither the number nor the peer is bound to something else.
   */
  bindChannel(number: number, family: 4 | 6, address: string, port: number, relay: RelayPort, expiresAtSec: number): void {
    const existing = this.channels.get(number);
    if (existing) {
      existing.expiresAtSec = expiresAtSec;
      return;
    }
    const ip4 = family === 4 ? ipv4ToNumber(address) : -1;
    const b = createChannelBinding(number, family, address, ip4, port, relay, expiresAtSec);
    (this.channels = own(this.channels)).set(number, b);
    if (family === 4) (this.chan4 = own(this.chan4)).set(peerKey4(ip4, port), b);
    else (this.chan6 ??= new Map()).set(peerKey6(address, port), b);
  }

  /** Drops expired permissions and channel bindings. */
  prune(nowSec: number): void {
    if (this.perms4 !== NONE && pruneExpired(this.perms4 as Map<number, number>, nowSec) > 0 && this.perms4.size === 0) this.perms4 = NONE;
    if (this.perms6) pruneExpired(this.perms6, nowSec);
    if (this.channels === NONE) return;
    const channels = this.channels as Map<number, ChannelBinding>;
    for (const [n, b] of channels) {
      if (b.expiresAtSec > nowSec) continue;
      channels.delete(n);
      if (b.family === 4) (this.chan4 as Map<number, ChannelBinding>).delete(peerKey4(b.ip4, b.port));
      else this.chan6?.delete(peerKey6(b.address, b.port));
    }
    if (channels.size === 0) this.channels = NONE;
    if (this.chan4.size === 0) this.chan4 = NONE;
  }
}

/** The empty map every allocation starts with; never written (the fields holding it are ReadonlyMap). */
const NONE: ReadonlyMap<never, never> = new Map<never, never>();

/** `m` to write to: a new Map in place of the shared empty one. */
function own<K, V>(m: ReadonlyMap<K, V>): Map<K, V> {
  return m === NONE ? new Map() : (m as Map<K, V>);
}
