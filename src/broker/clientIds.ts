/**
 * Client identifiers across the broker fabric (docs/signaling.md "One broker across nodes").
 *
 * One node refuses a client id that another username holds (embedded.ts): MQTT's takeover
 * (3.1.1 §3.1.4) would otherwise let anyone disconnect anyone, and a persistent session's stored
 * subscriptions and queue would go to whoever logs in with its id. Across nodes the same rule
 * needs a shared record: a lease in Redis, `p2pd:mqtt:client-id:{id}` = `username\ntoken`, where
 * the token names the connection holding it (so the close of a connection that was taken over
 * does not drop the lease of the one that took it).
 *
 * - A live connection's lease lives `3 × refreshMs` and is renewed every `refreshMs` by its node
 *   (a node that dies leaves leases that expire by themselves).
 * - A persistent session (clean = false) keeps its lease `sessionExpirySec` after its connection
 *   closed, and is listed in `p2pd:mqtt:sessions` (a sorted set scored by expiry, unix ms). Once
 *   it expires, one node (the one whose ZREM wins) deletes its subscriptions and queue
 *   (`forget`): a client that never comes back costs nothing after that.
 * - A clean session's lease is deleted when its connection closes.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';

export const LEASE_PREFIX = 'p2pd:mqtt:client-id:';
export const SESSIONS_KEY = 'p2pd:mqtt:sessions';
const DEFAULT_REFRESH_MS = 60_000;
/** Expired sessions forgotten per sweep and node. */
const SWEEP_BATCH = 200;
/** Leases renewed together (renewAll). */
const RENEW_SLICE = 200;

// KEYS[1] the lease; ARGV: username, token, ttl ms. Takes a free lease (1) or one of the same
// username (2: a takeover, or a persistent session coming back); 0 when another username holds it.
const CLAIM = `local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\\n' then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[2], 'PX', ARGV[3])
if cur then return 2 end
return 1`;
// KEYS[1] the lease; ARGV: value, ttl ms (0 = delete). Only the connection that holds it.
const RENEW = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`;

export interface ClientIdLeasesOptions {
  readonly db: RedisClient;
  readonly log: Logger;
  readonly sessionExpirySec: number;
  readonly refreshMs?: number | undefined;
  /** Deletes the stored state (subscriptions, queue) of an expired persistent session. */
  readonly forget: (clientId: string) => Promise<void>;
  readonly nowMs?: () => number;
}

interface Held {
  readonly clientId: string;
  readonly value: string;
  readonly persistent: boolean;
}

/** What `claim` hands back: the connection's hold on its id, to release when it closes. */
export interface Lease {
  release(): Promise<void>;
}

export class ClientIdLeases {
  private readonly db: RedisClient;
  private readonly log: Logger;
  private readonly sessionExpiryMs: number;
  private readonly refreshMs: number;
  private readonly forget: (clientId: string) => Promise<void>;
  private readonly nowMs: () => number;
  /** The leases this node's live connections hold, by client id (the newest connection). */
  private readonly live = new Map<string, Held>();
  private readonly timer: NodeJS.Timeout;
  private sweeping = false;
  private stopped = false;

  constructor(opts: ClientIdLeasesOptions) {
    this.db = opts.db;
    this.log = opts.log;
    this.sessionExpiryMs = opts.sessionExpirySec * 1000;
    this.refreshMs = opts.refreshMs ?? DEFAULT_REFRESH_MS;
    this.forget = opts.forget;
    this.nowMs = opts.nowMs ?? Date.now;
    this.timer = setInterval(() => { void this.tick(); }, this.refreshMs);
    this.timer.unref();
  }

  private get liveTtlMs(): number {
    return 3 * this.refreshMs;
  }

  /**
   * Takes `clientId` for `username` on every node, or answers undefined when another username
   * holds it (a live connection or a persistent session). Throws when Redis does not answer.
   */
  async claim(clientId: string, username: string, persistent: boolean): Promise<Lease | undefined> {
    const token = randomUUID();
    const taken = await this.db.eval(CLAIM, 1, LEASE_PREFIX + clientId, username, token, String(this.liveTtlMs));
    if (taken !== 1 && taken !== 2) return undefined;
    const held: Held = { clientId, value: `${username}\n${token}`, persistent };
    this.live.set(clientId, held);
    // The sessions' expiry index is bookkeeping the login need not wait for: a persistent session
    // is entered again at the next refresh (tick) if this fails, and a clean one can only replace
    // an entry when the id was held before (a free lease means any session there has expired).
    const note = persistent ? this.db.zadd(SESSIONS_KEY, this.nowMs() + this.liveTtlMs, clientId)
      : taken === 2 ? this.db.zrem(SESSIONS_KEY, clientId) : undefined;
    note?.catch((err: unknown) => this.log.warn({ err, clientId }, 'client id leases: session index not updated at login'));
    return { release: () => this.release(held) };
  }

  private async release(held: Held): Promise<void> {
    if (this.live.get(held.clientId) === held) this.live.delete(held.clientId);
    const key = LEASE_PREFIX + held.clientId;
    if (!held.persistent) {
      await this.db.eval(RENEW, 1, key, held.value, '0');
      return;
    }
    const renewed = await this.db.eval(RENEW, 1, key, held.value, String(this.sessionExpiryMs));
    // Taken over by a newer connection of the same username: that one now keeps the session.
    if (renewed === 1) await this.db.zadd(SESSIONS_KEY, this.nowMs() + this.sessionExpiryMs, held.clientId);
  }

  /** Renews the leases of live connections, then forgets expired persistent sessions. */
  async tick(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.renewAll();
      const expired = await this.db.zrangebyscore(SESSIONS_KEY, '-inf', this.nowMs(), 'LIMIT', 0, SWEEP_BATCH);
      for (const clientId of expired) {
        if (this.live.has(clientId)) continue;
        // One node wins the ZREM and forgets the session.
        if (await this.db.zrem(SESSIONS_KEY, clientId) !== 1) continue;
        await this.forget(clientId);
      }
    } catch (err) {
      this.log.warn({ err }, 'client id leases: refresh or sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * Renews every live lease, in slices spread over half the refresh interval (a lease lives
   * three): a node with 17,000 connections renewing them all at once put 17,000 scripts in
   * front of every other command on Redis each minute. The persistent sessions of a slice go
   * into the expiry index with one ZADD.
   */
  private async renewAll(): Promise<void> {
    const held = [...this.live.values()];
    const slices = Math.ceil(held.length / RENEW_SLICE);
    const pauseMs = slices > 1 ? Math.min(1000, this.refreshMs / 2 / slices) : 0;
    for (let i = 0; i < held.length && !this.stopped; i += RENEW_SLICE) {
      // A lease released since the list was taken is the release's to write (its own expiry).
      const slice = held.slice(i, i + RENEW_SLICE).filter((h) => this.live.get(h.clientId) === h);
      const liveUntil = this.nowMs() + this.liveTtlMs;
      const persistent = slice.filter((h) => h.persistent).flatMap((h) => [liveUntil, h.clientId]);
      await Promise.all([
        ...slice.map((h) => this.db.eval(RENEW, 1, LEASE_PREFIX + h.clientId, h.value, String(this.liveTtlMs))),
        persistent.length > 0 ? this.db.zadd(SESSIONS_KEY, ...persistent) : undefined,
      ]);
      if (pauseMs > 0) await sleep(pauseMs);
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
