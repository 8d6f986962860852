/**
 * The forwarding table in the addon (docs/turn.md "Forwarding in the addon"; udpbatch.c
 * "forwarding table"). Once the relay has let a channel's datagram through, it offers the channel
 * here: from then on the addon moves that channel's ChannelData both ways itself, with no JS per
 * datagram, until a deadline this side computes — the earliest of the allocation's, the
 * permission's and the channel's expiry — and within bandwidth credit taken from the
 * allocation's token bucket. A datagram the table cannot take (no channel, deadline passed, no
 * credit, truncated) goes to the relay in JS as before, which applies every rule and, when it
 * lets the datagram through, offers the channel again. So the rules stay defined only in
 * relay.ts and server.ts: the table holds nothing those did not grant, and never more than the
 * grant's lifetime.
 *
 * A channel to an own address of the server (peerPolicy.ts: there only live relay ports are
 * peers, checked per datagram in JS) is offered only while its port is a peer, and when it is so
 * because it is a live relay port of this node, the channel is unbound the moment that port dies
 * (PeerPolicy `onPortDead`); the other reasons change only with the own-address tables, which
 * unbind every such channel (server.ts). Not offered: clients on TCP/TLS or on dgram listeners,
 * relay sockets on dgram.
 *
 * Order: what the relay sent in JS waits in the sockets' send queues until the end of the
 * event-loop turn (batchGroup.ts `flushSoon`), while the table sends at once. So an offer takes
 * effect at the end of the turn, after those queues are flushed: a channel's datagrams leave in
 * the order they came, across the hand-over.
 *
 * Bytes the table forwards reach the allocation (`bytesRelayed`) and the relay's byte counters at
 * `collectAll` — each sweep and each scrape — and at `release`, when the allocation goes.
 */
import { BatchUdpSocket } from '../transport/batchUdp.ts';
import { loadUdpBatch, type BatchGroup, type UdpBatchAddon } from '../transport/batchGroup.ts';
import type { Allocation } from './allocation.ts';
import type { ChannelBinding } from './channelBinding.ts';
import type { PeerPolicy } from './peerPolicy.ts';
import type { RelayCounters } from './relay.ts';
import type { RelayIo } from './relayPorts.ts';

/** Credit handed over per offer for an allocation with a bandwidth limit: one burst of datagrams. */
export const CREDIT_BYTES = 16 * 1024;
/** Credit of an allocation without a limit: more than it can relay (udpbatch.c FWD_UNLIMITED). */
const UNLIMITED = 2 ** 52;
/** Allocations collected per call into the addon. */
const COLLECT_BATCH = 256;
const CLIENTS = 1;
const PEERS = 2;

export interface ForwarderStats {
  /** Datagrams the table sent, client → peer and peer → client, since the server started. */
  readonly packetsToPeer: number;
  readonly packetsToClient: number;
  /** Channels in the table now. */
  readonly channels: number;
}

export class Forwarder {
  private readonly lib: UdpBatchAddon;
  private readonly table: unknown;
  private readonly relayGroup: BatchGroup;
  private readonly counters: RelayCounters;
  private readonly peers: PeerPolicy;
  /** Channels to an own address forwarded because a relay port of this node is live: by its book slot. */
  private readonly guarded = new Map<number, Map<ChannelBinding, Allocation>>();
  /** Listener groups attached to the table; a group attached elsewhere (another server in this process) is not. */
  private readonly clientGroups = new Map<BatchGroup, boolean>();
  /** Allocations by their id in the table. */
  private readonly byId: (Allocation | undefined)[] = [];
  private readonly out = new Float64Array(COLLECT_BATCH * 3);
  /** Channels offered in this event-loop turn, applied at its end (see "Order" above). */
  private readonly pending = new Map<ChannelBinding, Allocation>();
  private readonly now: () => number;
  private readonly applyPending = (): void => {
    const nowSec = this.now();
    for (const [ch, a] of this.pending) this.offerNow(a, ch, nowSec);
    this.pending.clear();
  };

  /** A table for the relay sockets of `relayIo`, or undefined when they are not batched. */
  /** `now`: the clock of the lifetimes, in seconds. */
  static create(relayIo: RelayIo<Allocation>, counters: RelayCounters, peers: PeerPolicy, now: () => number): Forwarder | undefined {
    const lib = relayIo.group === undefined ? undefined : loadUdpBatch();
    if (lib === undefined || relayIo.group === undefined || typeof lib.forwarder !== 'function') return undefined;
    return new Forwarder(lib, relayIo.group, counters, peers, now);
  }

  private constructor(lib: UdpBatchAddon, relayGroup: BatchGroup, counters: RelayCounters, peers: PeerPolicy, now: () => number) {
    this.now = now;
    this.lib = lib;
    this.table = lib.forwarder();
    this.relayGroup = relayGroup;
    this.counters = counters;
    this.peers = peers;
    lib.attach(relayGroup.handle, this.table, PEERS);
  }

  /**
   * The relay let a datagram of `ch` through (either way): at the end of this event-loop turn the
   * table takes the channel's next ones, until the earliest expiry that applies, with fresh credit.
   */
  offer(a: Allocation, ch: ChannelBinding): void {
    if (this.pending.has(ch)) return;
    if (this.pending.size === 0) setImmediate(this.applyPending);
    this.pending.set(ch, a);
  }

  /** `offer`, now: every rule is judged again here, since the turn may have changed them. */
  private offerNow(a: Allocation, ch: ChannelBinding, nowSec: number): void {
    if (a.deleted || a.channels.get(ch.number) !== ch) return;
    if (ch.guarded && !this.peers.mayReach(ch.family, ch.ip4, ch.address, ch.port)) return;
    const udp = a.udp;
    const relay = ch.relay.native;
    if (!(udp instanceof BatchUdpSocket) || relay === undefined || relay.group !== this.relayGroup) return;
    const client = udp.native;
    if (!this.attached(client.group)) return;
    const permission = ch.family === 4 ? a.perms4.get(ch.ip4) : a.perms6?.get(ch.address);
    if (permission === undefined) return;
    const validMs = Math.floor((Math.min(a.expiresAtSec, permission, ch.expiresAtSec) - nowSec) * 1000);
    if (validMs <= 0) return;
    const credit = a.bucket === undefined ? UNLIMITED : a.bucket.takeUpTo(CREDIT_BYTES);
    if (a.forwardId < 0) {
      a.forwardId = this.lib.allocate(this.table);
      this.byId[a.forwardId] = a;
    }
    if (ch.guarded) this.guard(a, ch);
    this.lib.offer(this.table, a.forwardId, client.group.handle, client.sock, a.client.address, a.client.port,
      relay.group.handle, relay.sock, ch.address, ch.port, ch.number, credit, validMs);
  }

  /** `ch` is not forwarded any more (its peer became an own address, say). */
  unbind(a: Allocation, ch: ChannelBinding): void {
    if (a.forwardId >= 0) this.lib.unbind(this.table, a.forwardId, ch.number);
    this.unguard(ch);
  }

  /** A relay port of this node died (its book slot): channels that reached it stop at once. */
  portDead(slot: number): void {
    const channels = this.guarded.get(slot);
    if (channels === undefined) return;
    this.guarded.delete(slot);
    for (const [ch, a] of channels) if (a.forwardId >= 0) this.lib.unbind(this.table, a.forwardId, ch.number);
  }

  /** The allocation goes: its channels leave the table and what they forwarded is counted. */
  release(a: Allocation): void {
    const id = a.forwardId;
    if (id < 0) return;
    const [toPeer, toClient] = this.lib.release(this.table, id);
    for (const ch of a.channels.values()) if (ch.guarded) this.unguard(ch);
    this.count(a, toPeer, toClient);
    this.byId[id] = undefined;
    a.forwardId = -1;
  }

  /** Counts what the table forwarded since the last call into the allocations and the relay's counters. */
  collectAll(): void {
    const out = this.out;
    for (;;) {
      const n = this.lib.collect(this.table, out);
      for (let k = 0; k < n; k++) {
        const a = this.byId[out[k * 3]!];
        if (a !== undefined) this.count(a, out[k * 3 + 1]!, out[k * 3 + 2]!);
      }
      if (n < COLLECT_BATCH) break;
    }
    const [toPeer, toClient] = this.lib.forwarderStats(this.table);
    this.counters.forwardedToPeer.count = toPeer;
    this.counters.forwardedToClient.count = toClient;
  }

  /** Drops channels whose deadline passed (call once a second); a later offer binds them again. */
  prune(): void {
    this.lib.prune(this.table);
  }

  stats(): ForwarderStats {
    const [packetsToPeer, packetsToClient, channels] = this.lib.forwarderStats(this.table);
    return { packetsToPeer, packetsToClient, channels };
  }

  /** Files a channel to an own address under the relay port that lets it through, if that is what does. */
  private guard(a: Allocation, ch: ChannelBinding): void {
    const slot = this.peers.relaySlot(ch.family, ch.ip4, ch.address, ch.port);
    if (slot < 0 || this.peers.livePorts[slot] !== 1) return;
    let channels = this.guarded.get(slot);
    if (channels === undefined) this.guarded.set(slot, (channels = new Map()));
    channels.set(ch, a);
  }

  private unguard(ch: ChannelBinding): void {
    const slot = this.peers.relaySlot(ch.family, ch.ip4, ch.address, ch.port);
    const channels = slot < 0 ? undefined : this.guarded.get(slot);
    if (channels?.delete(ch) === true && channels.size === 0) this.guarded.delete(slot);
  }

  private count(a: Allocation, toPeer: number, toClient: number): void {
    a.bytesRelayed += toPeer + toClient;
    this.counters.toPeer.count += toPeer;
    this.counters.toClient.count += toClient;
  }

  private attached(group: BatchGroup): boolean {
    let ok = this.clientGroups.get(group);
    if (ok === undefined) {
      try {
        this.lib.attach(group.handle, this.table, CLIENTS);
        ok = true;
      } catch {
        ok = false;
      }
      this.clientGroups.set(group, ok);
    }
    return ok;
  }
}
