/**
 * Where relay usage lives (docs/operations.md "Usage"): relayed bytes and relaying seconds per
 * app and per device (camera), per hour. Memory (usageMemory.ts) or Redis (usageRedis.ts) behind
 * this one interface, with one shared test suite (usage.suite.ts). Hours older than the
 * retention (`--usage-retention`) are dropped, so the store cannot grow without bound.
 */
export type UsageKind = 'app' | 'device';

export const USAGE_KINDS: readonly UsageKind[] = ['app', 'device'];

/** Usage to add to one app's or device's hour. */
export interface UsageIncrement {
  /** Start of the hour, unix seconds (a multiple of 3600). */
  readonly hourSec: number;
  readonly kind: UsageKind;
  readonly id: string;
  readonly bytes: number;
  readonly relaySec: number;
}

/** One row of `GET /v1/usage`. */
export interface UsageRow {
  /** Start of the hour, ISO 8601 UTC (`2026-12-02T05:00:00.000Z`). */
  readonly hour: string;
  readonly kind: UsageKind;
  readonly id: string;
  readonly relayBytes: number;
  readonly relaySeconds: number;
}

export interface UsageQuery {
  /** First hour, unix seconds (a multiple of 3600). */
  readonly fromHourSec: number;
  /** End of the range, exclusive, unix seconds (a multiple of 3600). */
  readonly toHourSec: number;
  /** Only this kind (both when absent). */
  readonly kind?: UsageKind | undefined;
  /** At most this many ids per hour and kind, the most bytes first (all when absent). */
  readonly top?: number | undefined;
  /** At most this many rows in all. */
  readonly limit: number;
}

export interface UsageAnswer {
  readonly rows: UsageRow[];
  /** True when `limit` cut rows off. */
  readonly truncated: boolean;
}

export interface UsageStore {
  /** Adds each increment to its hour (one batch; the caller batches, never per packet). */
  add(increments: readonly UsageIncrement[]): Promise<void>;
  /**
   * Rows of the range: by hour (oldest first), then kind (`app`, `device`), then the most bytes
   * first (ties by id).
   */
  query(q: UsageQuery): Promise<UsageAnswer>;
}

export const HOUR_SEC = 3600;

/** Hours of the query, in order, with the kinds it asks for. */
export function queryHours(q: UsageQuery): { hourSec: number; kind: UsageKind }[] {
  const out: { hourSec: number; kind: UsageKind }[] = [];
  for (let h = q.fromHourSec; h < q.toHourSec; h += HOUR_SEC) {
    for (const kind of USAGE_KINDS) if (q.kind === undefined || q.kind === kind) out.push({ hourSec: h, kind });
  }
  return out;
}

/** Orders one hour-and-kind's rows as the answer does: the most bytes first, ties by id. */
export function byBytes(a: UsageRow, b: UsageRow): number {
  return b.relayBytes - a.relayBytes || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export const hourIso = (hourSec: number): string => new Date(hourSec * 1000).toISOString();
