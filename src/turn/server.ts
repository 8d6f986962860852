/**
 * The TURN server of one process (RFC 8656): plugs into the STUN front door as its TurnHandler,
 * authenticates requests, runs Allocate, Refresh, CreatePermission and ChannelBind, takes Send
 * indications, and hands the data plane to the relay. Policy comes in through the options (as
 * pion/turn's AuthHandler, PermissionHandler, QuotaHandler): the credential check, the failure
 * budget, the peer policy, the reservation book (ports and quotas), the bandwidth limit. What
 * happens is told on `events` (events.ts), which the metrics subscribe to; the relay's packet
 * counts go to the counters handed in.
 */
import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from '../log.ts';
import type { Ingress } from '../transport/ingress.ts';
import type { TurnHandler } from './handler.ts';
import {
  Attr, MessageClass, MessageWriter, Method, StunDecodeError, attrValue, checkFingerprint, findAttr, unknownAttributes,
  messageType, readAddressFamily, readChannelNumber, readEvenPort, readLifetime, readRequestedTransport,
  readReservationToken, readXorAddress, writeErrorCodeValue, errorCodeReasonLength, errorReason, RFC5780_REQUEST_ATTRIBUTES,
  type StunMessage, type TransportAddress,
} from '../stun/index.ts';
import { Allocation, type RelayEndpoint } from './allocation.ts';
import { OFFERED_PASSWORD_ALGORITHMS, type Authenticator, type AuthRefusal, type Principal } from './auth.ts';
import type { AuthLimiter } from './authLimiter.ts';
import { ClosedSessions } from './closedSessions.ts';
import { TokenBucket } from './bandwidth.ts';
import { isValidChannel } from './channelData.ts';
import { ipv4ToNumber } from './fiveTuple.ts';
import { ERROR_CODES, isTurnError, turnError } from '../errors.ts';
import { TurnEvents } from './events.ts';
import { AllocationManager } from './manager.ts';
import type { PeerPolicy } from './peerPolicy.ts';
import { Relay, plainRelayCounters, type RelayCounters } from './relay.ts';
import { createRelayIo, type RelayIo, type RelayPort } from './relayPorts.ts';
import { Forwarder, type ForwarderStats } from './forwarder.ts';
import type { ReservationClient } from './reservationClient.ts';
import type { UdpIo } from '../config/config.ts';
import { slotPool, slotPort, type EvenPort } from './reservations.ts';

/** RFC 8656 §7.2: an allocation lives 10 minutes unless the client asks otherwise. */
export const DEFAULT_LIFETIME_SEC = 600;
const UDP = 17;
/** Grants one Allocate may try when relay ports turn out bound outside p2pd (EADDRINUSE). */
const ALLOCATE_BIND_ATTEMPTS = 32;

import type { RelayAddress } from './ownAddresses.ts';

export interface TurnServerOptions {
  /** Who a request comes from (static users, TURN REST credentials: auth.ts). */
  readonly auth: Authenticator;
  /** Per-source budgets of failures and challenges (authLimiter.ts). */
  readonly authLimiter: AuthLimiter;
  /**
   * The relay addresses, in the order of the book's pools (ownAddresses.ts relayAddresses): a
   * grant's slot names the pool, so the address, its relay port binds on.
   */
  readonly relays: readonly RelayAddress[];
  readonly maxLifetimeSec: number;
  readonly permissionLifetimeSec: number;
  readonly channelLifetimeSec: number;
  /** Per-allocation relay bandwidth, bits/s; 0 = unlimited. */
  readonly maxBps: number;
  /** Which peers data may go to: ranges, own addresses, live relay ports (peerPolicy.ts). */
  readonly peers: PeerPolicy;
  readonly reservations: ReservationClient;
  /** Relay socket I/O: batched (the relayio addon) where built, unless 'dgram'. */
  readonly udpIo: UdpIo;
  readonly log: Logger;
  /** Where the relay counts bytes and drops (server/turnMetrics.ts hands in the Prometheus ones); plain counts by default. */
  readonly relayCounters?: RelayCounters;
  /** Permissions (peer IPs) per allocation, at most (RFC 8656 §9.3: 508 past it). */
  readonly maxPermissions: number;
  /** Channel bindings per allocation, at most (RFC 8656 §11.2: 508 past it). */
  readonly maxChannels: number;
  /** How long a heard session close is remembered (the session TTL: its credentials' longest life). */
  readonly closedSessionTtlSec: number;
  /**
   * With several workers: called for each counted auth failure so the primary keeps the node's
   * budget (it answers with {@link TurnServer.blockSource} on every worker).
   */
  readonly onAuthFailure?: (ip: string) => void;
}

/**
 * Where new allocations go while this node drains (RFC 8489 §10, RFC 8656 §7.2 step 2's 300):
 * another TURN node of the cluster, at its advertised address.
 */
export interface AlternateServer {
  /** Its address per family; a client of a family it lacks is served here. */
  readonly ip4?: string | undefined;
  readonly ip6?: string | undefined;
  /** UDP and TCP port. */
  readonly port: number;
  /** TURN over TLS port, and the certificate's host (ALTERNATE-DOMAIN, RFC 8489 §14.16). */
  readonly tlsPort?: number | undefined;
  readonly tlsHost?: string | undefined;
}

/** What an Allocate needs once its relay port is granted (the decoded message is reused by then). */
interface PendingAllocate {
  readonly transactionId: Buffer;
  readonly client: TransportAddress;
  readonly ingress: Ingress;
  readonly tupleKey: number | string | undefined;
  readonly principal: Principal;
  readonly fingerprint: boolean;
  readonly families: readonly (4 | 6)[];
  /** IPv6 asked for by ADDITIONAL-ADDRESS-FAMILY but not available: answered with ADDRESS-ERROR-CODE 440. */
  readonly ipv6Refused: boolean;
  readonly evenPort: EvenPort;
  readonly token: string | undefined;
  readonly lifetimeSec: number;
}

const nowSeconds = (): number => Date.now() / 1000;

export class TurnServer implements TurnHandler {
  readonly manager: AllocationManager;
  readonly relay: Relay;
  readonly relayIo: RelayIo<Allocation>;
  /** Allocations created, refreshed, deleted; requests refused (events.ts). */
  readonly events = new TurnEvents();
  private readonly opts: TurnServerOptions;
  private readonly log: Logger;
  private readonly auth: Authenticator;
  private readonly limiter: AuthLimiter;
  private readonly closedSessions: ClosedSessions;
  private readonly peers: PeerPolicy;
  private readonly writer = new MessageWriter(512);
  private readonly unknown: number[] = [];
  /** 5-tuples (or connections) with an Allocate waiting for its relay port. */
  private readonly pending = new Set<number | string | net.Socket>();
  private nextId = 1;
  private sweeper: NodeJS.Timeout | undefined;
  private lastSweepSec = nowSeconds();
  private stopped = false;
  private alternate: AlternateServer | undefined;

  constructor(opts: TurnServerOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.auth = opts.auth;
    this.limiter = opts.authLimiter;
    this.closedSessions = new ClosedSessions(opts.closedSessionTtlSec);
    this.peers = opts.peers;
    this.manager = new AllocationManager(opts.reservations, this.events);
    this.relay = new Relay(this.manager, opts.peers, opts.relayCounters ?? plainRelayCounters());
    const relay = this.relay;
    this.relayIo = createRelayIo<Allocation>(opts.udpIo, (a, buf, off, len, family, ip4, address, port) => {
      relay.onPeerDatagram(a, buf, off, len, family, ip4, address, port);
    });
    relay.transientPeerData = this.relayIo.transient;
    const forwarder = Forwarder.create(this.relayIo, relay.counters, opts.peers, nowSeconds);
    relay.forwarder = forwarder;
    this.manager.forwarder = forwarder;
    if (forwarder !== undefined) opts.peers.onPortDead = (slot) => forwarder.portDead(slot);
    // A node that joins or leaves the cluster changes which addresses are own: channels bound
    // before are marked again, so each frame to an own address keeps checking its port.
    opts.peers.onChange = () => {
      const visit = (a: Allocation): void => {
        for (const ch of a.channels.values()) {
          const was = ch.guarded;
          ch.guarded = this.peers.isOwn(ch.family, ch.address);
          // What made a channel to an own address a peer may have changed: the forwarding table
          // lets it go, and the next datagram the relay lets through offers it again.
          if (was || ch.guarded) forwarder?.unbind(a, ch);
        }
      };
      for (const a of this.manager.byTuple.values()) visit(a);
      for (const a of this.manager.byTuple6.values()) visit(a);
      for (const a of this.manager.byStream.values()) visit(a);
    };
  }

  start(): void {
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.manager.deleteAll('shutdown');
  }

  /**
   * While set, a new Allocate gets 300 Try Alternate naming `alt` (the node drains: docs/turn.md
   * "Draining"); allocations already here keep relaying and refreshing. undefined: allocate here.
   */
  setAlternate(alt: AlternateServer | undefined): void {
    this.alternate = alt;
  }

  stats(): { allocations: number; bps: number } {
    return { allocations: this.manager.size, bps: this.manager.bitsPerSecond };
  }

  /**
   * Counts what the addon's forwarding table relayed since the last sweep into the relay's
   * counters now (before a scrape), so turn_relay_bytes_total does not lag.
   */
  collectForwarded(): void {
    this.relay.forwarder?.collectAll();
  }

  /** What the forwarding table did (undefined without the addon, or with forwarding off). */
  forwardingStats(): ForwarderStats | undefined {
    return this.relay.forwarder?.stats();
  }

  /**
   * The session closed (docs/reference.md "HTTP API"): deletes every allocation whose REST username names it in
   * its session field, and refuses its credentials from now on.
   */
  releaseSession(sessionId: string): number {
    this.closedSessions.add(sessionId, nowSeconds());
    const n = this.manager.releaseSession(sessionId);
    if (n > 0) this.log.info({ sessionId, allocations: n }, 'turn allocations released');
    return n;
  }

  private sweep(): void {
    const now = nowSeconds();
    this.manager.sweep(now, now - this.lastSweepSec);
    this.limiter.sweep(now);
    this.closedSessions.sweep(now);
    this.lastSweepSec = now;
  }

  /** The node's shared failure count blocked `ip` until `untilSec` (from the primary). */
  blockSource(ip: string, untilSec: number): void {
    this.limiter.block(ip, untilSec, nowSeconds());
  }

  // --- TurnHandler

  onChannelData(buf: Buffer, source: TransportAddress, ingress: Ingress): void {
    this.relay.onChannelData(buf, source, ingress);
  }

  onStreamClosed(socket: net.Socket): void {
    const a = this.manager.byStream.get(socket);
    if (a) this.deleteAllocation(a, 'connection_closed');
  }

  /** RFC 8656 §2.1, §3.1: over TCP/TLS the allocation's lifetime is the connection's, so no idle timeout cuts it. */
  holdsAllocation(socket: net.Socket): boolean {
    return this.manager.byStream.has(socket) || this.pending.has(socket);
  }

  authorizeBinding(msg: StunMessage, source: TransportAddress, ingress: Ingress): { key: Buffer; sha256: boolean } | undefined {
    const now = nowSeconds();
    const ip = source.address;
    if (this.limiter.isBlocked(ip, now)) {
      this.events.emit('authRefused', 'rate_limited');
      return undefined;
    }
    const auth = this.auth.authenticate(msg, ip, now);
    if ('code' in auth) {
      this.refuse(msg, source, ingress, auth, now);
      return undefined;
    }
    return { key: auth.key, sha256: auth.sha256Integrity };
  }

  onStun(msg: StunMessage, source: TransportAddress, ingress: Ingress): void {
    if (msg.cls === MessageClass.Request) this.onRequest(msg, source, ingress);
    else if (msg.cls === MessageClass.Indication && msg.method === Method.Send) this.onSend(msg, source, ingress);
    else this.relay.drops.malformed.count++;
  }

  // --- Send indications (RFC 8656 §11.4): no auth, no answer; dropped when anything is off.

  private onSend(msg: StunMessage, source: TransportAddress, ingress: Ingress): void {
    const a = this.manager.find(source, ingress);
    if (a === undefined) {
      this.relay.drops.no_allocation.count++;
      return;
    }
    const pi = findAttr(msg, Attr.XorPeerAddress);
    const di = findAttr(msg, Attr.Data);
    if (pi < 0 || di < 0) {
      this.relay.drops.malformed.count++;
      return;
    }
    let peer: TransportAddress;
    try {
      peer = readXorAddress(attrValue(msg, pi), msg.transactionId);
    } catch {
      this.relay.drops.malformed.count++;
      return;
    }
    // DONT-FRAGMENT is honoured as Linux sends UDP: DF set, path MTU discovery on (see docs/turn.md).
    this.relay.sendToPeer(a, peer, attrValue(msg, di));
  }

  // --- Requests

  private onRequest(msg: StunMessage, source: TransportAddress, ingress: Ingress): void {
    if (msg.fingerprintIndex >= 0 && !checkFingerprint(msg)) {
      this.relay.drops.malformed.count++;
      return;
    }
    const m = msg.method;
    if (m !== Method.Allocate && m !== Method.Refresh && m !== Method.CreatePermission && m !== Method.ChannelBind) {
      // RFC 6062 (Connect, ConnectionBind) is not served: 400 like any method we do not know.
      this.replyPlainError(msg, source, ingress, 400, 'Bad Request: method not served');
      return;
    }
    const now = nowSeconds();
    const ip = source.address;
    const alloc = this.manager.find(source, ingress);
    // A blocked source may still refresh what it holds: the block is against guessing, and an
    // allocation on this 5-tuple proves the client passed authentication already.
    if (alloc === undefined && this.limiter.isBlocked(ip, now)) {
      this.events.emit('authRefused', 'rate_limited');
      return;
    }
    const auth = this.auth.authenticate(msg, ip, now, alloc?.principal);
    if ('code' in auth) {
      this.refuse(msg, source, ingress, auth, now);
      return;
    }
    try {
      // RFC 8489 §6.3.1.1; CHANGE-REQUEST and RESPONSE-PORT belong to Binding (RFC 5780), not to TURN's methods.
      const unknown = unknownAttributes(msg, RFC5780_REQUEST_ATTRIBUTES, this.unknown);
      if (unknown.length > 0) {
        const w = this.startResponse(msg, MessageClass.ErrorResponse);
        w.addErrorCode(420);
        w.addUnknownAttributes(unknown);
        this.send(w, auth, msg.fingerprintIndex >= 0, source, ingress);
        return;
      }
      if (alloc === undefined && m !== Method.Allocate) throw turnError('ALLOCATION_MISMATCH', 'no allocation on this 5-tuple');
      if (alloc !== undefined && m !== Method.Allocate && alloc.principal.username !== auth.username) {
        // RFC 8656 §5: every request on an allocation comes from the user who made it (an
        // Allocate on a taken 5-tuple gets 437 whoever sends it).
        throw turnError('WRONG_CREDENTIALS', 'not the username that created the allocation');
      }
      if (m === Method.Allocate) this.allocate(msg, source, ingress, auth, alloc);
      else if (m === Method.Refresh) this.refresh(msg, source, ingress, auth, alloc as Allocation, now);
      else if (m === Method.CreatePermission) this.createPermission(msg, source, ingress, auth, alloc as Allocation, now);
      else this.channelBind(msg, source, ingress, auth, alloc as Allocation, now);
    } catch (err) {
      if (isTurnError(err)) {
        this.replyError(msg, source, ingress, auth, err.stunCode, err.message);
      } else if (err instanceof StunDecodeError) {
        this.replyError(msg, source, ingress, auth, 400, `Bad Request: ${err.code}`);
      } else throw err;
    }
  }

  /** 401, 438 or 400 to a request whose credentials did not check out. */
  private refuse(msg: StunMessage, source: TransportAddress, ingress: Ingress, r: AuthRefusal, now: number): void {
    const ip = source.address;
    this.events.emit('authRefused', r.reason);
    if (COUNTED_FAILURES.has(r.reason)) {
      // The nonce checked out (authenticate tests it before these): the sender saw our 401.
      this.limiter.recordFailure(ip, now);
      this.opts.onAuthFailure?.(ip);
    } else if (!this.limiter.allowChallenge(ip, now)) {
      this.events.emit('authRefused', 'rate_limited');
      return;
    }
    if (r.code === 400) {
      this.replyPlainError(msg, source, ingress, 400, 'Bad Request: incomplete credentials');
      return;
    }
    const w = this.startResponse(msg, MessageClass.ErrorResponse);
    w.addErrorCode(r.code);
    w.addString(Attr.Realm, this.auth.realm);
    w.addString(Attr.Nonce, this.auth.nonce(ip, now));
    w.addAttr(Attr.PasswordAlgorithms, OFFERED_PASSWORD_ALGORITHMS);
    this.send(w, undefined, msg.fingerprintIndex >= 0, source, ingress);
  }

  // --- Allocate (RFC 8656 §7.2)

  private allocate(msg: StunMessage, source: TransportAddress, ingress: Ingress, principal: Principal, existing: Allocation | undefined): void {
    const fingerprint = msg.fingerprintIndex >= 0;
    if (existing !== undefined) {
      // A retransmission of the Allocate that made it gets the same answer; anything else is 437.
      if (existing.transactionId === msg.transactionId.toString('latin1')) {
        this.sendAllocateSuccess(existing, msg.transactionId, source, ingress, fingerprint, false, undefined);
        return;
      }
      throw turnError('ALLOCATION_MISMATCH', 'this 5-tuple has an allocation already');
    }
    if (this.alternate !== undefined && this.tryAlternate(msg, source, ingress, principal, this.alternate)) return;
    const tupleKey = this.manager.tupleKeyFor(source, ingress);
    const pendingKey = tupleKey ?? (ingress.stream as net.Socket);
    if (this.pending.has(pendingKey)) return; // a retransmission: the answer is on its way

    const ti = findAttr(msg, Attr.RequestedTransport);
    if (ti < 0) throw turnError('TURN_BAD_REQUEST', 'REQUESTED-TRANSPORT is missing');
    if (readRequestedTransport(attrValue(msg, ti)) !== UDP) throw turnError('UNSUPPORTED_TRANSPORT', 'only UDP relays are offered');

    const tokI = findAttr(msg, Attr.ReservationToken);
    const evenI = findAttr(msg, Attr.EvenPort);
    const rafI = findAttr(msg, Attr.RequestedAddressFamily);
    const aafI = findAttr(msg, Attr.AdditionalAddressFamily);
    if (tokI >= 0 && (evenI >= 0 || rafI >= 0 || aafI >= 0)) {
      throw turnError('TURN_BAD_REQUEST', 'RESERVATION-TOKEN goes alone, without EVEN-PORT or address families');
    }
    if (rafI >= 0 && aafI >= 0) throw turnError('TURN_BAD_REQUEST', 'REQUESTED- and ADDITIONAL-ADDRESS-FAMILY together');

    const families: (4 | 6)[] = [];
    let ipv6Refused = false;
    const requested = rafI >= 0 ? readAddressFamily(attrValue(msg, rafI)) : 4;
    if (!this.relayAddress(requested)) throw turnError('ADDRESS_FAMILY_NOT_SUPPORTED', `no IPv${requested} relay address here`);
    families.push(requested);
    if (aafI >= 0) {
      // RFC 8656 §7.2: ADDITIONAL-ADDRESS-FAMILY asks for an IPv6 relay besides the IPv4 one.
      if (readAddressFamily(attrValue(msg, aafI)) !== 6) throw turnError('TURN_BAD_REQUEST', 'ADDITIONAL-ADDRESS-FAMILY must be IPv6');
      if (this.relayAddress(6)) families.push(6);
      else ipv6Refused = true;
    }

    let evenPort: EvenPort = 'none';
    if (evenI >= 0) evenPort = readEvenPort(attrValue(msg, evenI)).reserveNext ? 'even+reserve' : 'even';
    const token = tokI >= 0 ? readReservationToken(attrValue(msg, tokI)).toString('hex') : undefined;

    const sid = principal.sessionId;
    if (sid !== undefined && this.closedSessions.has(sid, nowSeconds())) {
      this.events.emit('limitRefused', 'session_closed');
      this.refuseClosedSession(msg, source, ingress);
      return;
    }

    const li = findAttr(msg, Attr.Lifetime);
    const asked = li >= 0 ? readLifetime(attrValue(msg, li)) : DEFAULT_LIFETIME_SEC;
    const lifetimeSec = Math.min(asked > 0 ? asked : DEFAULT_LIFETIME_SEC, this.opts.maxLifetimeSec);

    const p: PendingAllocate = {
      transactionId: Buffer.from(msg.transactionId),
      client: { family: source.family, address: source.address, port: source.port },
      ingress, tupleKey, principal, fingerprint, families, ipv6Refused, evenPort, token, lifetimeSec,
    };
    this.pending.add(pendingKey);
    this.completeAllocate(p).then(
      () => this.pending.delete(pendingKey),
      (err: unknown) => {
        this.pending.delete(pendingKey);
        this.log.error({ err, sessionId: principal.sessionId }, 'allocate failed');
      },
    );
  }

  /**
   * 300 with ALTERNATE-SERVER (of the client's family, RFC 8489 §14.15) and, over TLS,
   * ALTERNATE-DOMAIN; only after authentication and with MESSAGE-INTEGRITY (RFC 8489 §10), so an
   * on-path attacker cannot forge a redirect. False when the alternate has no way in for this client.
   */
  private tryAlternate(msg: StunMessage, source: TransportAddress, ingress: Ingress, principal: Principal, alt: AlternateServer): boolean {
    const ip = source.family === 4 ? alt.ip4 : alt.ip6;
    const tls = ingress.stream instanceof TLSSocket;
    const port = tls ? alt.tlsPort : alt.port;
    if (ip === undefined || port === undefined) return false;
    const w = this.startResponse(msg, MessageClass.ErrorResponse);
    const code = ERROR_CODES.TRY_ALTERNATE.stun;
    w.addErrorCode(code, reasonFor(code, 'this node is draining'));
    w.addAddress(Attr.AlternateServer, { family: source.family, address: ip, port });
    if (tls && alt.tlsHost !== undefined) w.addString(Attr.AlternateDomain, alt.tlsHost);
    this.events.emit('limitRefused', 'draining');
    this.send(w, principal, msg.fingerprintIndex >= 0, source, ingress);
    return true;
  }

  private relayAddress(family: 4 | 6): RelayAddress | undefined {
    return this.opts.relays.find((r) => r.family === family);
  }

  private async completeAllocate(p: PendingAllocate): Promise<void> {
    const { quotaKey, principalKey } = quotaKeys(p.principal);
    const sessionId = p.principal.sessionId;
    // A port may be bound by a process outside p2pd: the book sets it aside and the next grant
    // comes from elsewhere in the range (reservations.ts), so a run of such ports costs a few
    // attempts, not the allocation.
    const busy: number[] = [];
    for (let attempt = 0; attempt < ALLOCATE_BIND_ATTEMPTS; attempt++) {
      const res = await this.opts.reservations.reserve({
        quotaKey, principalKey, sessionId, families: p.families, evenPort: p.evenPort, token: p.token, busy: busy.splice(0),
      });
      if (!res.ok) {
        this.events.emit('limitRefused', res.limit);
        if (res.limit === 'session_closed') {
          if (sessionId !== undefined) this.closedSessions.add(sessionId, nowSeconds());
          this.refuseClosedSessionTo(p);
        } else this.replyErrorTo(p, res.code, res.reason);
        return;
      }
      const maxBps = this.opts.maxBps;
      const a = new Allocation({
        id: this.nextId++,
        tupleKey: p.tupleKey,
        client: p.client,
        udp: p.ingress.udp,
        stream: p.ingress.stream,
        principal: p.principal,
        quotaKey,
        grant: res.grant,
        transactionId: p.transactionId.toString('latin1'),
        expiresAtSec: capAtCredentialExpiry(p.principal, nowSeconds() + p.lifetimeSec),
        bucket: maxBps > 0 ? new TokenBucket(maxBps) : undefined,
      });
      const endpoints: RelayEndpoint[] = [];
      try {
        for (const slot of res.slots) {
          const addr = this.opts.relays[slotPool(slot)]!;
          const relayPort = slotPort(slot);
          const port: RelayPort = await this.relayIo.open(addr.family, addr.bind, relayPort, a);
          endpoints.push({ port, address: { family: addr.family, address: addr.advertised, port: relayPort } });
        }
      } catch (err) {
        for (const e of endpoints) e.port.close();
        this.opts.reservations.release(res.grant);
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && p.token === undefined) {
          busy.push(res.slots[endpoints.length]!);
          continue;
        }
        this.log.warn({ err: (err as Error).message }, 'relay socket bind failed');
        this.replyErrorTo(p, 508, 'Insufficient Capacity: relay port unavailable');
        return;
      }
      if (this.stopped || p.ingress.stream?.destroyed === true) {
        for (const e of endpoints) e.port.close();
        this.opts.reservations.release(res.grant);
        return;
      }
      a.relay4 = endpoints.find((e) => e.address.family === 4);
      a.relay6 = endpoints.find((e) => e.address.family === 6);
      this.manager.add(a);
      this.log.debug({ sessionId: a.sessionId, relay: endpoints.map((e) => e.address.port), lifetimeSec: p.lifetimeSec }, 'turn allocation created');
      this.sendAllocateSuccess(a, p.transactionId, p.client, p.ingress, p.fingerprint, p.ipv6Refused, res.token);
      return;
    }
    this.replyErrorTo(p, 508, 'Insufficient Capacity: no relay port could be bound');
  }

  private sendAllocateSuccess(
    a: Allocation, transactionId: Buffer, client: TransportAddress, ingress: Ingress,
    fingerprint: boolean, ipv6Refused: boolean, token: string | undefined,
  ): void {
    const w = this.writer.reset(messageType(Method.Allocate, MessageClass.SuccessResponse), transactionId);
    if (a.relay4) w.addXorAddress(Attr.XorRelayedAddress, a.relay4.address);
    if (a.relay6) w.addXorAddress(Attr.XorRelayedAddress, a.relay6.address);
    if (ipv6Refused) addAddressErrorCode(w, 6, 440);
    const left = a.expiresAtSec - nowSeconds();
    // Whole seconds; never past the credentials' expiry when they cap it.
    const credentialLeft = a.principal.expiresAtSec === undefined ? Infinity : Math.floor(a.principal.expiresAtSec - nowSeconds());
    w.addUint32(Attr.Lifetime, Math.max(0, Math.min(Math.round(left), credentialLeft)));
    if (token !== undefined) w.addAttr(Attr.ReservationToken, Buffer.from(token, 'hex'));
    w.addXorAddress(Attr.XorMappedAddress, client);
    this.send(w, a.principal, fingerprint, client, ingress);
  }

  // --- Refresh (RFC 8656 §7.3)

  private refresh(msg: StunMessage, source: TransportAddress, ingress: Ingress, principal: Principal, a: Allocation, now: number): void {
    const rafI = findAttr(msg, Attr.RequestedAddressFamily);
    if (rafI >= 0 && !a.relayFor(readAddressFamily(attrValue(msg, rafI)))) {
      throw turnError('PEER_ADDRESS_FAMILY_MISMATCH', 'the allocation has no relayed address of that family');
    }
    const li = findAttr(msg, Attr.Lifetime);
    const asked = li >= 0 ? readLifetime(attrValue(msg, li)) : DEFAULT_LIFETIME_SEC;
    let lifetime = 0;
    if (asked === 0) this.deleteAllocation(a, 'refresh');
    else {
      // Never past the credentials' expiry: the client fetches new ones and allocates again.
      a.expiresAtSec = capAtCredentialExpiry(principal, now + Math.min(asked, this.opts.maxLifetimeSec));
      lifetime = Math.max(0, Math.floor(a.expiresAtSec - now));
      this.events.emit('allocationRefreshed', a, lifetime);
    }
    const w = this.startResponse(msg, MessageClass.SuccessResponse);
    w.addUint32(Attr.Lifetime, lifetime);
    this.send(w, principal, msg.fingerprintIndex >= 0, source, ingress);
  }

  // --- CreatePermission (RFC 8656 §9.2)

  private createPermission(msg: StunMessage, source: TransportAddress, ingress: Ingress, principal: Principal, a: Allocation, now: number): void {
    const peers: TransportAddress[] = [];
    for (let i = 0; i < msg.attrCount; i++) {
      if (msg.attrTypes[i] !== Attr.XorPeerAddress) continue;
      peers.push(this.checkPeer(a, readXorAddress(attrValue(msg, i), msg.transactionId)));
    }
    if (peers.length === 0) throw turnError('TURN_BAD_REQUEST', 'XOR-PEER-ADDRESS is missing');
    let added = 0;
    for (let k = 0; k < peers.length; k++) {
      const peer = peers[k]!;
      if (a.hasPermission(peer.family, peer.address)) continue;
      let dup = false;
      for (let j = 0; j < k && !dup; j++) dup = peers[j]!.family === peer.family && peers[j]!.address === peer.address;
      if (!dup) added++;
    }
    if (added > 0) this.checkPermissionRoom(a, added, now);
    // All or nothing: every peer was checked before any permission is installed.
    const expires = now + this.opts.permissionLifetimeSec;
    for (const peer of peers) a.addPermission(peer.family, peer.address, expires);
    this.send(this.startResponse(msg, MessageClass.SuccessResponse), principal, msg.fingerprintIndex >= 0, source, ingress);
  }

  /**
   * RFC 8656 §9.3: a CreatePermission the server cannot fulfil for lack of capacity gets 508; the
   * cap is --max-permissions per allocation (what one client can make us hold). Expired ones are
   * dropped first, so the room is what is live now.
   */
  private checkPermissionRoom(a: Allocation, added: number, now: number): void {
    const max = this.opts.maxPermissions;
    if (a.permissionCount + added <= max) return;
    a.prune(now);
    if (a.permissionCount + added <= max) return;
    this.events.emit('limitRefused', 'permissions');
    throw turnError('INSUFFICIENT_CAPACITY', `at most ${max} permissions per allocation`);
  }

  /**
   * 403 for denied peers (checked first: the answer reveals nothing about families), 443 for a
   * family without relay. Per IP (RFC 8656 §9.1): the port of an own address is judged later.
   */
  private checkPeer(a: Allocation, peer: TransportAddress): TransportAddress {
    const verdict = this.peers.permits(peer.family, peer.address);
    if (verdict !== 'allowed') {
      this.events.emit('peerRefused', verdict);
      throw turnError('PEER_FORBIDDEN', verdict === 'own_address' ? 'Forbidden: an address of this server' : 'Forbidden: peer address denied');
    }
    if (!a.relayFor(peer.family)) throw turnError('PEER_ADDRESS_FAMILY_MISMATCH', 'no relayed address of the peer family');
    return peer;
  }

  // --- ChannelBind (RFC 8656 §11.2)

  private channelBind(msg: StunMessage, source: TransportAddress, ingress: Ingress, principal: Principal, a: Allocation, now: number): void {
    const ci = findAttr(msg, Attr.ChannelNumber);
    const pi = findAttr(msg, Attr.XorPeerAddress);
    if (ci < 0 || pi < 0) throw turnError('TURN_BAD_REQUEST', 'CHANNEL-NUMBER and XOR-PEER-ADDRESS are required');
    const number = readChannelNumber(attrValue(msg, ci));
    if (!isValidChannel(number)) throw turnError('TURN_BAD_REQUEST', 'channel number out of range');
    const peer = this.checkPeer(a, readXorAddress(attrValue(msg, pi), msg.transactionId));
    // A channel is to one transport address (RFC 8656 §12): an own address only at a live relay port.
    const guarded = this.peers.isOwn(peer.family, peer.address);
    if (guarded && !this.peers.mayReach(peer.family, peer.family === 4 ? ipv4ToNumber(peer.address) : -1, peer.address, peer.port)) {
      this.events.emit('peerRefused', 'own_port');
      throw turnError('PEER_FORBIDDEN', 'Forbidden: not a relay port of this server or its cluster');
    }
    const bound = a.channels.get(number);
    if (bound && (bound.family !== peer.family || bound.address !== peer.address || bound.port !== peer.port)) {
      throw turnError('TURN_BAD_REQUEST', 'channel bound to another peer');
    }
    const byPeer = a.channelForPeer(peer.family, peer.address, peer.port);
    if (byPeer && byPeer.number !== number) throw turnError('TURN_BAD_REQUEST', 'peer bound to another channel');
    if (!bound) {
      // RFC 8656 §11.2: 508 when the server cannot take one more binding (--max-channels).
      const max = this.opts.maxChannels;
      if (a.channels.size >= max) a.prune(now);
      if (a.channels.size >= max) {
        this.events.emit('limitRefused', 'channels');
        throw turnError('INSUFFICIENT_CAPACITY', `at most ${max} channels per allocation`);
      }
    }
    if (!a.hasPermission(peer.family, peer.address)) this.checkPermissionRoom(a, 1, now);
    a.bindChannel(number, peer.family, peer.address, peer.port, a.relayFor(peer.family)!.port, now + this.opts.channelLifetimeSec);
    a.channels.get(number)!.guarded = guarded;
    a.addPermission(peer.family, peer.address, now + this.opts.permissionLifetimeSec);
    this.send(this.startResponse(msg, MessageClass.SuccessResponse), principal, msg.fingerprintIndex >= 0, source, ingress);
  }

  private deleteAllocation(a: Allocation, reason: 'refresh' | 'connection_closed'): void {
    this.manager.delete(a, reason);
    this.log.debug({ sessionId: a.sessionId, reason }, 'turn allocation deleted');
  }

  // --- Answers

  private startResponse(msg: StunMessage, cls: number): MessageWriter {
    return this.writer.reset(messageType(msg.method, cls), msg.transactionId);
  }

  /** Finishes with MESSAGE-INTEGRITY(-SHA256) when authenticated, FINGERPRINT when asked, and sends. */
  private send(w: MessageWriter, principal: Principal | undefined, fingerprint: boolean, to: TransportAddress, ingress: Ingress): void {
    if (principal) {
      if (principal.sha256Integrity) w.addMessageIntegritySha256(principal.key);
      else w.addMessageIntegrity(principal.key);
    }
    if (fingerprint) w.addFingerprint();
    const out = w.toBuffer();
    if (ingress.stream !== undefined) {
      if (!ingress.stream.destroyed) ingress.stream.write(out);
    } else ingress.udp?.send(out, to.port, to.address);
  }

  private replyError(msg: StunMessage, source: TransportAddress, ingress: Ingress, principal: Principal, code: number, reason: string): void {
    const w = this.startResponse(msg, MessageClass.ErrorResponse);
    w.addErrorCode(code, reasonFor(code, reason));
    this.send(w, principal, msg.fingerprintIndex >= 0, source, ingress);
  }

  private replyPlainError(msg: StunMessage, source: TransportAddress, ingress: Ingress, code: number, reason: string): void {
    const w = this.startResponse(msg, MessageClass.ErrorResponse);
    w.addErrorCode(code, reasonFor(code, reason));
    this.send(w, undefined, msg.fingerprintIndex >= 0, source, ingress);
  }

  /**
   * 401 to credentials of a closed session (docs/turn.md): like any refusal of credentials
   * (RFC 8489 §9.2.4), with REALM and NONCE and without MESSAGE-INTEGRITY. Not a counted failure:
   * the client did hold valid credentials.
   */
  private refuseClosedSession(msg: StunMessage, source: TransportAddress, ingress: Ingress): void {
    const w = this.startResponse(msg, MessageClass.ErrorResponse);
    this.finishClosedSession(w, source, ingress, msg.fingerprintIndex >= 0);
  }

  private refuseClosedSessionTo(p: PendingAllocate): void {
    const w = this.writer.reset(messageType(Method.Allocate, MessageClass.ErrorResponse), p.transactionId);
    this.finishClosedSession(w, p.client, p.ingress, p.fingerprint);
  }

  private finishClosedSession(w: MessageWriter, to: TransportAddress, ingress: Ingress, fingerprint: boolean): void {
    w.addErrorCode(401, reasonFor(401, 'the session of these credentials is closed'));
    w.addString(Attr.Realm, this.auth.realm);
    w.addString(Attr.Nonce, this.auth.nonce(to.address, nowSeconds()));
    this.send(w, undefined, fingerprint, to, ingress);
  }

  private replyErrorTo(p: PendingAllocate, code: number, reason: string): void {
    const w = this.writer.reset(messageType(Method.Allocate, MessageClass.ErrorResponse), p.transactionId);
    w.addErrorCode(code, reasonFor(code, reason));
    this.send(w, p.principal, p.fingerprint, p.client, p.ingress);
  }
}

/**
 * Refusals that count against a source's failure budget: each comes after the NONCE checked out
 * (TurnAuthenticator tests it first), so the sender received our 401 at this address — a spoofed
 * source cannot spend a victim's budget. The rest (challenge, stale nonce, missing attributes)
 * only spend the challenge bucket.
 */
const COUNTED_FAILURES: ReadonlySet<string> = new Set(['unknown_user', 'rest_expired', 'bad_integrity', 'bad_password_algorithm']);

/**
 * Quota keys in separate namespaces (docs/turn.md): "s:<sessionId>" and "u:<name>" take
 * --user-quota, "p:<sub>" takes --principal-quota, so a session id chosen equal to someone's sub
 * spends nothing of theirs.
 */
function quotaKeys(p: Principal): { quotaKey: string | undefined; principalKey: string | undefined } {
  // Static users have no expiry; REST credentials of a session without a named principal are
  // charged to the session's app, which the primary reads from the store (reservationClient.ts).
  if (p.expiresAtSec === undefined) return { quotaKey: `u:${p.username}`, principalKey: undefined };
  return { quotaKey: p.sessionId !== undefined ? `s:${p.sessionId}` : undefined, principalKey: p.sub === undefined ? undefined : `p:${p.sub}` };
}

/** An allocation of REST credentials ends when they do (coturn does the same). */
function capAtCredentialExpiry(p: Principal, expiresAtSec: number): number {
  return p.expiresAtSec === undefined ? expiresAtSec : Math.min(expiresAtSec, p.expiresAtSec);
}

/** The RFC phrase, with our detail after it, within the reason phrase's 127 characters. */
function reasonFor(code: number, detail: string): string {
  const phrase = errorReason(code);
  const text = detail.startsWith(phrase) || phrase === '' ? detail : `${phrase}: ${detail}`;
  return text.length > 120 ? text.slice(0, 120) : text;
}

/** ADDRESS-ERROR-CODE (RFC 8656 §18.13): an ERROR-CODE value whose first byte names the family. */
function addAddressErrorCode(w: MessageWriter, family: 4 | 6, code: number): void {
  const reason = errorReason(code);
  const bytes = errorCodeReasonLength(code, reason);
  const off = w.reserveAttr(Attr.AddressErrorCode, 4 + bytes);
  writeErrorCodeValue(w.buffer, off, code, reason, bytes);
  w.buffer[off] = family === 4 ? 0x01 : 0x02;
}
