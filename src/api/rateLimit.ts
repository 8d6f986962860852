/**
 * Request budgets of the HTTP API (`--rate-limit-token`, `--rate-limit-source`; docs/client.md
 * "Limits"): a token bucket of N requests/s with a burst of 2N, kept as GCRA (one number per key:
 * the bucket's "theoretical arrival time"), so a key costs 8 bytes of state and a check is O(1).
 *
 * - `LocalRateLimiter`: this process only (the memory store's single node). The table is
 *   bounded: a key whose bucket is full again is worth nothing and goes first, and past `maxKeys`
 *   the least recently used key is evicted, a few per insert, never the whole table at once.
 * - `RedisRateLimiter`: one key per budget in Redis (`ratelimit:{KEY}`, expiring when the bucket is
 *   full again), checked by one script with Redis's own clock, so every node of a cluster spends
 *   the same budget. When Redis does not answer, the node decides alone (a local limiter) rather
 *   than refuse every request or wave every request through, and for the next second does not
 *   ask it again: a frozen Redis adds at most one short timeout a second to the API's answers.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { httpRateLimitFallbackTotal } from '../metrics/metrics.ts';
import type { Logger } from '../log.ts';
import { closeRedisClient, createRedisClient, type RedisClient } from '../redis.ts';

export interface RateLimiter {
  /** Spends one request of `key`'s budget: 0 when allowed, else the ms until one would be. */
  take(key: string): Promise<number>;
}

export interface RateLimitOptions {
  /** Sustained requests per second (> 0). */
  readonly perSec: number;
  /** Requests allowed at once on a full bucket (default 2 × perSec). */
  readonly burst?: number;
}

/** GCRA parameters: emission interval and the tolerance a burst may run ahead by, in ms. */
function gcra(opts: RateLimitOptions): { intervalMs: number; toleranceMs: number } {
  const intervalMs = 1000 / opts.perSec;
  return { intervalMs, toleranceMs: intervalMs * (opts.burst ?? 2 * opts.perSec) };
}

export interface LocalRateLimiterOptions extends RateLimitOptions {
  /** Most keys held (default 50,000: about 5 MiB). */
  readonly maxKeys?: number;
  readonly nowMs?: () => number;
}

export class LocalRateLimiter implements RateLimiter {
  /** key → theoretical arrival time (ms); Map order = least recently used first. */
  private readonly tat = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  private readonly maxKeys: number;
  private readonly nowMs: () => number;

  constructor(opts: LocalRateLimiterOptions) {
    ({ intervalMs: this.intervalMs, toleranceMs: this.toleranceMs } = gcra(opts));
    this.maxKeys = opts.maxKeys ?? 50_000;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  get size(): number {
    return this.tat.size;
  }

  /** Synchronous form of take(). */
  takeNow(key: string): number {
    const now = this.nowMs();
    const prev = this.tat.get(key);
    const next = Math.max(prev ?? now, now) + this.intervalMs;
    if (next - now > this.toleranceMs) return Math.ceil(next - now - this.toleranceMs);
    if (prev !== undefined) this.tat.delete(key); // re-inserted last: most recently used
    else this.evict(now);
    this.tat.set(key, next);
    return 0;
  }

  take(key: string): Promise<number> {
    return Promise.resolve(this.takeNow(key));
  }

  /** The ms until `key` could spend a request (0 = now), spending nothing. */
  waitNow(key: string): number {
    const now = this.nowMs();
    const next = Math.max(this.tat.get(key) ?? now, now) + this.intervalMs;
    return next - now > this.toleranceMs ? Math.ceil(next - now - this.toleranceMs) : 0;
  }

  /** Room for one more key: drops up to two least recently used keys that are full again, and past maxKeys the oldest anyway. */
  private evict(now: number): void {
    let n = 0;
    for (const [k, t] of this.tat) {
      if (t > now && this.tat.size < this.maxKeys) break;
      this.tat.delete(k);
      if (++n === 2) break;
    }
  }
}

// KEYS: the budget. ARGV: intervalMs, toleranceMs → 0 allowed, else ms to wait.
// Redis's clock (TIME) so nodes with skewed clocks spend one budget alike.
const LUA_TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nextTat = tat + interval
if nextTat - now > tolerance then return math.ceil(nextTat - now - tolerance) end
redis.call('SET', KEYS[1], tostring(nextTat), 'PX', math.ceil(nextTat - now))
return 0
`;

interface TakeScript {
  rateLimitTake(key: string, intervalMs: number, toleranceMs: number): Promise<number>;
}

export interface RedisRateLimiterOptions extends RateLimitOptions {
  readonly client: RedisClient;
  /** Separates budgets of different kinds in one Redis (e.g. `token`, `source`). */
  readonly prefix: string;
  /** Shared by the limiters of one client, so one timeout spares every budget the next second. */
  readonly health?: RedisHealth;
}

/** Until when (ms) a Redis client that failed is not asked. */
export interface RedisHealth {
  skipUntilMs: number;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly client: TakeScript;
  private readonly prefix: string;
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  private readonly fallback: LocalRateLimiter;
  private readonly redis: RedisClient;
  private readonly health: RedisHealth;

  constructor(opts: RedisRateLimiterOptions) {
    opts.client.defineCommand('rateLimitTake', { numberOfKeys: 1, lua: LUA_TAKE });
    this.client = opts.client as unknown as TakeScript;
    this.prefix = opts.prefix;
    ({ intervalMs: this.intervalMs, toleranceMs: this.toleranceMs } = gcra(opts));
    this.fallback = new LocalRateLimiter(opts);
    this.redis = opts.client;
    this.health = opts.health ?? { skipUntilMs: 0 };
  }

  async take(key: string): Promise<number> {
    if (this.redis.status !== 'ready' || Date.now() < this.health.skipUntilMs) {
      httpRateLimitFallbackTotal.inc();
      return this.fallback.takeNow(key);
    }
    try {
      return await this.client.rateLimitTake(`ratelimit:${this.prefix}:{${key}}`, this.intervalMs, this.toleranceMs);
    } catch {
      this.health.skipUntilMs = Date.now() + 1000;
      httpRateLimitFallbackTotal.inc();
      return this.fallback.takeNow(key);
    }
  }
}

/**
 * The budget key of a source address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64, the
 * smallest block one subscriber is given (RFC 6177), or one host could rotate through 2^64 budgets.
 */
export function sourceKey(ip: string): string {
  if (ip.startsWith('::ffff:') && ip.includes('.')) return ip.slice(7);
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

/** The budget key of a bearer token: a digest, so no token is ever written into a Redis key name. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 22);
}

export interface HttpRateLimits {
  readonly token: RateLimiter | undefined;
  readonly source: RateLimiter | undefined;
  close(): Promise<void>;
}

/**
 * The node's budgets from `--rate-limit-token` and `--rate-limit-source` (0 = none): in Redis when
 * the sessions are (`--redis-url`, one connection of their own), in this process otherwise.
 */
export function createHttpRateLimits(opts: { readonly tokenPerSec: number; readonly sourcePerSec: number; readonly redisUrls: readonly string[]; readonly log?: Logger }): HttpRateLimits {
  const client = opts.redisUrls.length > 0 && (opts.tokenPerSec > 0 || opts.sourcePerSec > 0)
    // A budget check waits at most 150 ms for Redis (the store's own commands wait 500 ms).
    ? createRedisClient({ urls: opts.redisUrls, log: opts.log, name: 'p2pd-rate-limits', commandTimeoutMs: 150 })
    : undefined;
  // A frozen Redis costs one 150 ms wait a second in all, not one per budget.
  const health: RedisHealth = { skipUntilMs: 0 };
  const limiter = (perSec: number, prefix: string): RateLimiter | undefined => {
    if (perSec <= 0) return undefined;
    return client ? new RedisRateLimiter({ client, prefix, perSec, health }) : new LocalRateLimiter({ perSec });
  };
  return {
    token: limiter(opts.tokenPerSec, 'token'),
    source: limiter(opts.sourcePerSec, 'source'),
    close: async () => { if (client) await closeRedisClient(client); },
  };
}
