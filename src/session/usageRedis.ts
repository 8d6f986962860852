/**
 * Relay usage in Redis or Redis Cluster. Keys (docs/operations.md "Usage"), for each hour H (unix
 * seconds of its start) and kind K (`app` or `device`):
 * - `usage:{H}:K` — sorted set: id → relayed bytes (ZINCRBY), read the most bytes first;
 * - `usage:{H}:K:sec` — hash: id → relaying seconds (HINCRBY).
 * Both expire `--usage-retention` days after the hour ends (EXPIREAT), so old hours leave by
 * themselves. The hash tag `{H}` keeps an hour's keys in one slot of a Cluster. Writes come in
 * batches (a node's recorder flushes every few seconds), never per packet.
 *
 * The connection is the session store's (it is not closed here).
 */
import { storeUnavailable } from '../errors.ts';
import type { RedisClient } from '../redis.ts';
import {
  byBytes, HOUR_SEC, hourIso, queryHours, type UsageAnswer, type UsageIncrement, type UsageKind, type UsageQuery, type UsageRow, type UsageStore,
} from './usageStore.ts';

export const usageBytesKey = (hourSec: number, kind: UsageKind): string => `usage:{${hourSec}}:${kind}`;
export const usageSecondsKey = (hourSec: number, kind: UsageKind): string => `usage:{${hourSec}}:${kind}:sec`;

/** Hours read per round of a query (one command each, pipelined). */
const HOURS_PER_ROUND = 24;

export interface RedisUsageStoreOptions {
  readonly client: RedisClient;
  readonly retentionDays: number;
}

export class RedisUsageStore implements UsageStore {
  private readonly client: RedisClient;
  private readonly retentionSec: number;

  constructor(opts: RedisUsageStoreOptions) {
    this.client = opts.client;
    this.retentionSec = opts.retentionDays * 86400;
  }

  async add(increments: readonly UsageIncrement[]): Promise<void> {
    const ops: Promise<unknown>[] = [];
    const keys = new Map<string, number>();
    for (const inc of increments) {
      const b = usageBytesKey(inc.hourSec, inc.kind);
      const s = usageSecondsKey(inc.hourSec, inc.kind);
      // A row exists once its bytes do, even at 0 (seconds alone still list it).
      ops.push(this.client.zincrby(b, inc.bytes, inc.id));
      if (inc.relaySec > 0) ops.push(this.client.hincrby(s, inc.id, inc.relaySec));
      keys.set(b, inc.hourSec);
      keys.set(s, inc.hourSec);
    }
    for (const [key, hourSec] of keys) ops.push(this.client.expireat(key, hourSec + HOUR_SEC + this.retentionSec));
    try {
      await Promise.all(ops);
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async query(q: UsageQuery): Promise<UsageAnswer> {
    const parts = queryHours(q);
    const rows: UsageRow[] = [];
    try {
      for (let i = 0; i < parts.length; i += HOURS_PER_ROUND) {
        // Each part asks for no more than could still fit, plus one to tell a cut.
        const want = Math.min(q.top ?? Infinity, q.limit - rows.length + 1);
        const round = parts.slice(i, i + HOURS_PER_ROUND);
        const read = await Promise.all(round.map(async ({ hourSec, kind }) => {
          const flat = await this.client.zrevrange(usageBytesKey(hourSec, kind), 0, want - 1, 'WITHSCORES');
          if (flat.length === 0) return [];
          const ids: string[] = [];
          for (let j = 0; j < flat.length; j += 2) ids.push(flat[j] as string);
          const secs = await this.client.hmget(usageSecondsKey(hourSec, kind), ...ids);
          const hour = hourIso(hourSec);
          return ids.map((id, j) => ({ hour, kind, id, relayBytes: Number(flat[j * 2 + 1]), relaySeconds: Number(secs[j] ?? 0) }));
        }));
        for (const part of read) {
          for (const row of part.sort(byBytes)) {
            if (rows.length === q.limit) return { rows, truncated: true };
            rows.push(row);
          }
        }
      }
    } catch (err) {
      throw storeUnavailable(err);
    }
    return { rows, truncated: false };
  }
}
