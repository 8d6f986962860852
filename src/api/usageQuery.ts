/**
 * The query of `GET /v1/usage` (docs/reference.md "HTTP API", docs/operations.md "Usage"): the
 * range (`from`, `to`: ISO 8601 times or unix seconds; the last 24 hours by default), widened to
 * whole hours and at most {@link MAX_RANGE_HOURS} long; `kind`, `top`, `limit`, `format`. Pure:
 * every malformed value is a BAD_REQUEST naming it.
 */
import { badRequest } from '../errors.ts';
import { HOUR_SEC, type UsageKind, type UsageQuery } from '../session/usageStore.ts';

/** A range at most 31 days long (one answer reads at most this many hours). */
export const MAX_RANGE_HOURS = 31 * 24;
export const MAX_LIMIT = 10_000;
export const DEFAULT_LIMIT = 1000;
export const MAX_TOP = 1000;

export type UsageFormat = 'json' | 'csv';

export interface ParsedUsageQuery extends UsageQuery {
  readonly format: UsageFormat;
}

const UNIX = /^\d{1,11}$/;
const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Unix seconds of an ISO 8601 time (with its zone, or a bare date: UTC midnight) or of unix seconds. */
export function parseTime(name: string, raw: string): number {
  if (UNIX.test(raw)) return Number(raw);
  if (ISO.test(raw)) {
    const ms = Date.parse(raw);
    if (Number.isFinite(ms) && ms >= 0) return Math.floor(ms / 1000);
  }
  throw badRequest(`"${name}" must be an ISO 8601 time with its zone (2026-12-02T05:00:00Z) or unix seconds`);
}

function parseCount(name: string, raw: string, max: number): number {
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw badRequest(`"${name}" must be a whole number from 1 to ${max}`);
  return Number(raw);
}

/**
 * The query from the request's query string and Accept header. `nowSec` ends the default range.
 * Values that are not strings (a repeated parameter) are refused.
 */
export function parseUsageQuery(query: Readonly<Record<string, unknown>>, accept: string | undefined, nowSec: number): ParsedUsageQuery {
  const str = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badRequest(`"${name}" must be given once`);
    return v;
  };
  for (const name of Object.keys(query)) {
    if (!['from', 'to', 'kind', 'top', 'limit', 'format'].includes(name)) throw badRequest(`unknown parameter "${name}"`);
  }
  const toRaw = str('to');
  const fromRaw = str('from');
  const to = toRaw === undefined ? nowSec : parseTime('to', toRaw);
  const from = fromRaw === undefined ? to - 24 * HOUR_SEC : parseTime('from', fromRaw);
  if (from >= to) throw badRequest('"from" must be before "to"');
  const fromHourSec = Math.floor(from / HOUR_SEC) * HOUR_SEC;
  const toHourSec = Math.ceil(to / HOUR_SEC) * HOUR_SEC;
  if ((toHourSec - fromHourSec) / HOUR_SEC > MAX_RANGE_HOURS) throw badRequest(`the range is at most ${MAX_RANGE_HOURS / 24} days`);
  const kindRaw = str('kind');
  if (kindRaw !== undefined && kindRaw !== 'app' && kindRaw !== 'device') throw badRequest('"kind" must be app or device');
  const topRaw = str('top');
  const limitRaw = str('limit');
  const formatRaw = str('format');
  if (formatRaw !== undefined && formatRaw !== 'json' && formatRaw !== 'csv') throw badRequest('"format" must be json or csv');
  const format: UsageFormat = formatRaw ?? (accept !== undefined && /(^|,)\s*text\/csv\b/i.test(accept) ? 'csv' : 'json');
  return {
    fromHourSec,
    toHourSec,
    kind: kindRaw as UsageKind | undefined,
    top: topRaw === undefined ? undefined : parseCount('top', topRaw, MAX_TOP),
    limit: limitRaw === undefined ? DEFAULT_LIMIT : parseCount('limit', limitRaw, MAX_LIMIT),
    format,
  };
}
