/**
 * The allocations of one process: finds them by 5-tuple (numbers for IPv4 UDP clients, text for
 * IPv6 ones, the connection for TCP/TLS) and by session, deletes them (relay sockets closed,
 * ports and quota given back), and once a second reclaims what expired — allocations,
 * permissions, channel bindings. Nothing here runs per packet except the lookups. Each
 * allocation added or deleted is told to `events` (events.ts).
 */
import type net from 'node:net';
import type { Ingress } from '../transport/ingress.ts';
import type { TransportAddress } from '../stun/index.ts';
import type { Allocation } from './allocation.ts';
import type { TurnEvents } from './events.ts';
import type { Forwarder } from './forwarder.ts';
import { ipv4ToNumber, udp6TupleKey, udpTupleKey } from './fiveTuple.ts';
import type { ReservationClient } from './reservationClient.ts';

export type DeleteReason = 'refresh' | 'expired' | 'session_released' | 'connection_closed' | 'shutdown';

export class AllocationManager {
  /** IPv4 UDP clients by 5-tuple number. */
  readonly byTuple = new Map<number, Allocation>();
  /** IPv6 UDP clients by 5-tuple text. */
  readonly byTuple6 = new Map<string, Allocation>();
  /** TCP/TLS clients by connection (RFC 8656 §3.1: one allocation per connection). */
  readonly byStream = new Map<net.Socket, Allocation>();
  private readonly bySession = new Map<string, Set<Allocation>>();
  private readonly reservations: ReservationClient;
  private readonly events: TurnEvents;
  private count = 0;
  private bps = 0;
  /** The addon's forwarding table: told of each delete, collected at each sweep. */
  forwarder: Forwarder | undefined;

  constructor(reservations: ReservationClient, events: TurnEvents) {
    this.reservations = reservations;
    this.events = events;
  }

  get size(): number {
    return this.count;
  }

  /** Relayed payload bits per second over the last sweep interval. */
  get bitsPerSecond(): number {
    return this.bps;
  }

  /** The 5-tuple key of a UDP client (undefined for TCP/TLS: those are keyed by connection). */
  tupleKeyFor(source: TransportAddress, ingress: Ingress): number | string | undefined {
    if (ingress.stream !== undefined) return undefined;
    return source.family === 4
      ? udpTupleKey(ingress.slot, ipv4ToNumber(source.address), source.port)
      : udp6TupleKey(ingress.slot, source.address, source.port);
  }

  /** The allocation on this 5-tuple, if any. Runs for every ChannelData frame. */
  find(source: TransportAddress, ingress: Ingress): Allocation | undefined {
    if (ingress.stream !== undefined) return this.byStream.get(ingress.stream);
    if (source.family === 4) return this.byTuple.get(udpTupleKey(ingress.slot, ipv4ToNumber(source.address), source.port));
    return this.byTuple6.get(udp6TupleKey(ingress.slot, source.address, source.port));
  }

  add(a: Allocation): void {
    if (typeof a.tupleKey === 'number') this.byTuple.set(a.tupleKey, a);
    else if (typeof a.tupleKey === 'string') this.byTuple6.set(a.tupleKey, a);
    else if (a.stream) this.byStream.set(a.stream, a);
    const sid = a.sessionId;
    if (sid !== undefined) {
      let set = this.bySession.get(sid);
      if (!set) this.bySession.set(sid, (set = new Set()));
      set.add(a);
    }
    this.count++;
    this.events.emit('allocationCreated', a);
  }

  delete(a: Allocation, reason: DeleteReason): void {
    if (a.deleted) return;
    a.deleted = true;
    if (typeof a.tupleKey === 'number') this.byTuple.delete(a.tupleKey);
    else if (typeof a.tupleKey === 'string') this.byTuple6.delete(a.tupleKey);
    else if (a.stream) this.byStream.delete(a.stream);
    const sid = a.sessionId;
    if (sid !== undefined) {
      const set = this.bySession.get(sid);
      set?.delete(a);
      if (set?.size === 0) this.bySession.delete(sid);
    }
    this.forwarder?.release(a);
    a.relay4?.port.close();
    a.relay6?.port.close();
    // What it relayed since the last sweep (a part of a second, counted as one).
    if (a.bytesRelayed > 0) {
      a.bytesTotal += a.bytesRelayed;
      a.relayingSec += 1;
      a.bytesRelayed = 0;
    }
    this.reservations.release(a.grant);
    this.count--;
    this.events.emit('allocationDeleted', a, reason);
  }

  /** Every allocation made with REST credentials of this session. Returns how many went. */
  releaseSession(sessionId: string): number {
    const set = this.bySession.get(sessionId);
    if (!set) return 0;
    const all = [...set];
    for (const a of all) this.delete(a, 'session_released');
    return all.length;
  }

  /** Reclaims what expired; call about once a second. */
  sweep(nowSec: number, elapsedSec: number): void {
    this.forwarder?.collectAll();
    this.forwarder?.prune();
    let bytes = 0;
    const visit = (a: Allocation): void => {
      bytes += a.bytesRelayed;
      if (a.bytesRelayed > 0) {
        a.bytesTotal += a.bytesRelayed;
        a.relayingSec += Math.max(1, Math.round(elapsedSec));
        a.bytesRelayed = 0;
      }
      if (a.expiresAtSec <= nowSec) this.delete(a, 'expired');
      else a.prune(nowSec);
    };
    for (const a of this.byTuple.values()) visit(a);
    for (const a of this.byTuple6.values()) visit(a);
    for (const a of this.byStream.values()) visit(a);
    this.bps = elapsedSec > 0 ? Math.round((bytes * 8) / elapsedSec) : 0;
  }

  deleteAll(reason: DeleteReason): void {
    for (const a of [...this.byTuple.values(), ...this.byTuple6.values(), ...this.byStream.values()]) this.delete(a, reason);
  }
}
