/**
 * Relay usage in this process's memory (the embedded default): same answers as the Redis store
 * (usage.suite.ts runs on both). Hours past the retention are dropped at each add and query.
 */
import {
  byBytes, HOUR_SEC, hourIso, queryHours, type UsageAnswer, type UsageIncrement, type UsageKind, type UsageQuery, type UsageStore,
} from './usageStore.ts';

interface Counts {
  bytes: number;
  relaySec: number;
}

export interface MemoryUsageStoreOptions {
  /** Days an hour is kept after it ends. */
  readonly retentionDays: number;
  /** Clock in unix milliseconds (tests move it). */
  readonly nowMs?: () => number;
}

export class MemoryUsageStore implements UsageStore {
  /** `${hourSec}|${kind}` → id → counts. */
  private readonly hours = new Map<string, Map<string, Counts>>();
  private readonly retentionSec: number;
  private readonly nowMs: () => number;

  constructor(opts: MemoryUsageStoreOptions) {
    this.retentionSec = opts.retentionDays * 86400;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /** An hour is kept until `retention` after it ends (as the Redis keys' EXPIRE). */
  private kept(hourSec: number): boolean {
    return hourSec + HOUR_SEC + this.retentionSec > this.nowMs() / 1000;
  }

  private prune(): void {
    for (const key of this.hours.keys()) if (!this.kept(Number(key.split('|')[0]))) this.hours.delete(key);
  }

  async add(increments: readonly UsageIncrement[]): Promise<void> {
    this.prune();
    for (const inc of increments) {
      if (!this.kept(inc.hourSec)) continue;
      const key = `${inc.hourSec}|${inc.kind}`;
      let ids = this.hours.get(key);
      if (!ids) this.hours.set(key, ids = new Map());
      const c = ids.get(inc.id);
      if (c) {
        c.bytes += inc.bytes;
        c.relaySec += inc.relaySec;
      } else ids.set(inc.id, { bytes: inc.bytes, relaySec: inc.relaySec });
    }
  }

  async query(q: UsageQuery): Promise<UsageAnswer> {
    this.prune();
    const rows = [];
    for (const { hourSec, kind } of queryHours(q)) {
      const ids = this.hours.get(`${hourSec}|${kind}`);
      if (!ids) continue;
      const hour = hourIso(hourSec);
      const part = [...ids].map(([id, c]) => ({ hour, kind: kind as UsageKind, id, relayBytes: c.bytes, relaySeconds: c.relaySec })).sort(byBytes);
      for (const row of q.top === undefined ? part : part.slice(0, q.top)) {
        if (rows.length === q.limit) return { rows, truncated: true };
        rows.push(row);
      }
    }
    return { rows, truncated: false };
  }
}
