/**
 * The book of relay ports and quotas for one node, shared by all its workers: --max-allocations
 * (total), --user-quota (per static user, and per session for REST credentials),
 * --principal-quota (per REST principal, the token's sub: all of one app's sessions), the relay port
 * range with EVEN-PORT and RESERVATION-TOKEN (RFC 8656 §7.2, §14.6, §14.9). With several workers
 * it lives in the primary and workers ask over IPC (reservationClient.ts), so quotas hold across
 * workers and a reservation token works whichever worker the second Allocate lands on.
 *
 * Several relay addresses (--relay-ip a,b,…) are pools of their own, each with the whole
 * --relay-ports range: a grant names slots, pool × POOL_SLOTS + port, and an Allocate takes a
 * port from the pool of its family with the most ports free (so allocations spread over the
 * addresses, and a full one is passed over); 508 only when every pool of the family is full.
 *
 * Pure bookkeeping: no sockets. The worker binds the port it was granted.
 */
import { randomBytes } from 'node:crypto';

export type EvenPort = 'none' | 'even' | 'even+reserve';

/** Slots per pool (one relay address's ports): a slot is pool × POOL_SLOTS + port. */
export const POOL_SLOTS = 65536;
export const slotPool = (slot: number): number => Math.floor(slot / POOL_SLOTS);
export const slotPort = (slot: number): number => slot % POOL_SLOTS;

export interface ReserveRequest {
  /**
   * Key of --user-quota: "s:<sessionId>" for REST credentials with a session, "u:<name>" for a
   * static user; undefined for session-less REST credentials ("<expiry>::<sub>").
   */
  readonly quotaKey: string | undefined;
  /** Key of --principal-quota: "p:<sub>" for REST credentials; undefined for static users. */
  readonly principalKey?: string | undefined;
  /** The session of REST credentials: the primary asks the session store whether it closed. */
  readonly sessionId?: string | undefined;
  /** Relayed address families wanted, in order: one, or IPv4 and IPv6 (ADDITIONAL-ADDRESS-FAMILY). */
  readonly families: readonly (4 | 6)[];
  readonly evenPort: EvenPort;
  /** RESERVATION-TOKEN as hex, redeeming a port held by an earlier Allocate. */
  readonly token: string | undefined;
  /**
   * Slots of this Allocate's previous grant that would not bind (EADDRINUSE: held by a process
   * outside p2pd). The book sets them aside for OUTSIDE_BUSY_MS and looks elsewhere in the range.
   */
  readonly busy?: readonly number[];
}

export type ReserveResult =
  /** `slots`: one per family asked, in order; for a RESERVATION-TOKEN the reserved one (its pool says the family). */
  | { readonly ok: true; readonly grant: number; readonly slots: readonly number[]; readonly token: string | undefined }
  | { readonly ok: false; readonly code: 401 | 486 | 508; readonly reason: string; readonly limit: ReserveLimit };

/** Which bound refused an allocation (the `limit` label of turn_limit_refusals_total). */
export type ReserveLimit = 'max_allocations' | 'user_quota' | 'principal_quota' | 'relay_ports' | 'session_closed' | 'unavailable';

/** How long a port reserved by EVEN-PORT R=1 waits for its RESERVATION-TOKEN (RFC 8656 §14.9: ~30 s). */
export const RESERVATION_TIMEOUT_MS = 30_000;

/** How long a port found bound outside p2pd stays out of the book before it is tried again. */
export const OUTSIDE_BUSY_MS = 60_000;

interface Grant {
  readonly owner: number;
  readonly quotaKey: string | undefined;
  readonly principalKey: string | undefined;
  readonly slots: readonly number[];
}

interface Reserved {
  readonly slot: number;
  readonly owner: number;
  readonly expiresAtMs: number;
}

export interface ReservationLimits {
  readonly minPort: number;
  readonly maxPort: number;
  /** 0 = unlimited. */
  readonly maxAllocations: number;
  /** 0 = unlimited. */
  readonly userQuota: number;
  /** 0 = unlimited. */
  readonly principalQuota?: number;
  /** The family of each relay address, in pool order (ownAddresses.ts relayAddresses); default one IPv4 pool. */
  readonly pools?: readonly (4 | 6)[];
}

/** One relay address's ports. */
interface Pool {
  readonly family: 4 | 6;
  readonly base: number;
  /** By port: 0 free, 1 in use, 2 held for a reservation token, 3 bound outside p2pd (see `outside`). */
  readonly state: Uint8Array;
  cursor: number;
  free: number;
}

export class Reservations {
  private readonly limits: ReservationLimits;
  private readonly pools: Pool[];
  private readonly grants = new Map<number, Grant>();
  private readonly perKey = new Map<string, number>();
  private readonly tokens = new Map<string, Reserved>();
  /** Slots found bound by another process: slot → when they go back into the book. */
  private readonly outside = new Map<number, number>();
  private nextGrant = 1;
  /** Told of each slot that an allocation takes (true) or gives back (false): livePorts.ts. */
  private readonly onPortChange: ((slot: number, live: boolean) => void) | undefined;

  constructor(limits: ReservationLimits, onPortChange?: (slot: number, live: boolean) => void) {
    this.limits = limits;
    this.onPortChange = onPortChange;
    this.pools = (limits.pools ?? [4]).map((family, i) => ({
      family, base: i * POOL_SLOTS, state: new Uint8Array(POOL_SLOTS), cursor: this.randomPort(), free: limits.maxPort - limits.minPort + 1,
    }));
  }

  private randomPort(): number {
    const { minPort, maxPort } = this.limits;
    return minPort + Math.floor(Math.random() * (maxPort - minPort + 1));
  }

  get allocations(): number {
    return this.grants.size;
  }

  reserve(req: ReserveRequest, owner: number, nowMs: number): ReserveResult {
    this.expireTokens(nowMs);
    if (req.busy !== undefined && req.busy.length > 0) this.setAside(req.busy, nowMs);
    const l = this.limits;
    if (l.maxAllocations > 0 && this.grants.size >= l.maxAllocations) {
      return { ok: false, code: 508, reason: 'max-allocations reached', limit: 'max_allocations' };
    }
    // RFC 8656 §7.2: 486 (Allocation Quota Reached) when the user may hold no more.
    const q = req.quotaKey;
    if (q !== undefined && l.userQuota > 0 && (this.perKey.get(q) ?? 0) >= l.userQuota) {
      return { ok: false, code: 486, reason: 'user quota reached', limit: 'user_quota' };
    }
    const pk = req.principalKey;
    const principalQuota = l.principalQuota ?? 0;
    if (pk !== undefined && principalQuota > 0 && (this.perKey.get(pk) ?? 0) >= principalQuota) {
      return { ok: false, code: 486, reason: 'principal quota reached', limit: 'principal_quota' };
    }

    const slots: number[] = [];
    let token: string | undefined;
    if (req.token !== undefined) {
      const r = this.tokens.get(req.token);
      if (!r) return { ok: false, code: 508, reason: 'unknown reservation token', limit: 'relay_ports' };
      this.tokens.delete(req.token);
      this.poolOf(r.slot).state[slotPort(r.slot)] = 1;
      this.onPortChange?.(r.slot, true);
      slots.push(r.slot);
    } else if (req.evenPort !== 'none') {
      const s = this.findFree(req.families[0] ?? 4, req.evenPort === 'even+reserve' ? 2 : 1, true);
      if (s < 0) return { ok: false, code: 508, reason: 'no even relay port free', limit: 'relay_ports' };
      this.take(s, 1);
      slots.push(s);
      if (req.evenPort === 'even+reserve') {
        this.take(s + 1, 2);
        token = randomBytes(8).toString('hex');
        this.tokens.set(token, { slot: s + 1, owner, expiresAtMs: nowMs + RESERVATION_TIMEOUT_MS });
      }
    }
    while (slots.length < req.families.length) {
      const s = this.findFree(req.families[slots.length]!, 1, false);
      if (s < 0) {
        for (const t of slots) this.free(t);
        return { ok: false, code: 508, reason: 'no relay port free', limit: 'relay_ports' };
      }
      this.take(s, 1);
      slots.push(s);
    }
    const grant = this.nextGrant++;
    // A copy of exactly its length: the array pushed to has room for 16 (~150 B a grant held).
    this.grants.set(grant, { owner, quotaKey: q, principalKey: pk, slots: slots.slice() });
    if (q !== undefined) this.perKey.set(q, (this.perKey.get(q) ?? 0) + 1);
    if (pk !== undefined) this.perKey.set(pk, (this.perKey.get(pk) ?? 0) + 1);
    return { ok: true, grant, slots, token };
  }

  /** Gives back an allocation's ports and quota. Unknown grants are ignored. */
  release(grant: number): void {
    const g = this.grants.get(grant);
    if (!g) return;
    this.grants.delete(grant);
    for (const s of g.slots) this.free(s);
    if (g.quotaKey !== undefined) this.unuse(g.quotaKey);
    if (g.principalKey !== undefined) this.unuse(g.principalKey);
  }

  /** Allocations held under a quota key now (for tests and metrics). */
  used(key: string): number {
    return this.perKey.get(key) ?? 0;
  }

  private unuse(key: string): void {
    const n = (this.perKey.get(key) ?? 1) - 1;
    if (n <= 0) this.perKey.delete(key);
    else this.perKey.set(key, n);
  }

  /** A worker died: everything it held goes back. */
  releaseOwner(owner: number): void {
    for (const [id, g] of this.grants) if (g.owner === owner) this.release(id);
    for (const [t, r] of this.tokens) {
      if (r.owner === owner) {
        this.tokens.delete(t);
        this.free(r.slot);
      }
    }
  }

  /** Frees ports whose reservation token was never redeemed, and those set aside long enough. */
  expireTokens(nowMs: number): void {
    for (const [t, r] of this.tokens) {
      if (r.expiresAtMs <= nowMs) {
        this.tokens.delete(t);
        this.free(r.slot);
      }
    }
    for (const [slot, untilMs] of this.outside) {
      if (untilMs <= nowMs) {
        this.outside.delete(slot);
        this.free(slot);
      }
    }
  }

  /** Ports bound outside p2pd right now (for tests and metrics). */
  get setAsideCount(): number {
    return this.outside.size;
  }

  /**
   * Ports another process holds come in runs (its own next-fit, or its ephemeral ports), so the
   * next grant after one is found starts from a random place in the range rather than the next
   * port, which is likely held too.
   */
  private setAside(slots: readonly number[], nowMs: number): void {
    const { minPort, maxPort } = this.limits;
    for (const s of slots) {
      if (!Number.isInteger(s) || s < 0) continue;
      const pool = this.pools[slotPool(s)];
      const p = slotPort(s);
      if (pool === undefined || p < minPort || p > maxPort || pool.state[p] !== 0) continue;
      this.take(s, 3);
      this.outside.set(s, nowMs + OUTSIDE_BUSY_MS);
      pool.cursor = this.randomPort();
    }
  }

  private poolOf(slot: number): Pool {
    return this.pools[slotPool(slot)]!;
  }

  private take(slot: number, state: 1 | 2 | 3): void {
    const pool = this.poolOf(slot);
    pool.state[slotPort(slot)] = state;
    pool.free--;
    if (state === 1) this.onPortChange?.(slot, true);
  }

  private free(slot: number): void {
    const pool = this.poolOf(slot);
    const p = slotPort(slot);
    const was = pool.state[p];
    if (was === 0) return;
    pool.state[p] = 0;
    pool.free++;
    if (was === 1) this.onPortChange?.(slot, false);
  }

  /**
   * A free slot of `family`: from the pool with the most ports free (ties: the first), else the
   * next one that has a fit; -1 when none has.
   */
  private findFree(family: 4 | 6, run: 1 | 2, even: boolean): number {
    const order = this.pools.filter((p) => p.family === family && p.free >= run).sort((a, b) => b.free - a.free);
    for (const pool of order) {
      const p = this.findInPool(pool, run, even);
      if (p >= 0) return pool.base + p;
    }
    return -1;
  }

  /** Next free port of `pool` from its cursor (next fit, so a freed port is not reused at once). */
  private findInPool(pool: Pool, run: 1 | 2, even: boolean): number {
    const { minPort, maxPort } = this.limits;
    const span = maxPort - minPort + 1;
    const state = pool.state;
    let p = pool.cursor;
    for (let n = 0; n < span; n++, p++) {
      if (p > maxPort) p = minPort;
      if (even && (p & 1) !== 0) continue;
      if (state[p] !== 0) continue;
      if (run === 2 && (p + 1 > maxPort || state[p + 1] !== 0)) continue;
      pool.cursor = p + run > maxPort ? minPort : p + run;
      return p;
    }
    return -1;
  }
}
