/**
 * `GET /v1/usage` (docs/reference.md "HTTP API", docs/operations.md "Usage"): relay bytes and
 * relaying seconds per app and per device per hour, for operator tokens only (FORBIDDEN for app
 * and device tokens). JSON by default; CSV with `Accept: text/csv` or `?format=csv`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TokenVerifier } from '../auth/token.ts';
import { forbidden } from '../errors.ts';
import type { UsageRow, UsageStore } from '../session/usageStore.ts';
import { bearerToken } from './auth.ts';
import { parseUsageQuery } from './usageQuery.ts';

export interface UsageApiOptions {
  readonly usage: UsageStore;
  readonly verifier: TokenVerifier;
  readonly nowMs?: () => number;
}

const CSV_COLUMNS = ['hour', 'kind', 'id', 'relayBytes', 'relaySeconds'] as const;

/** A CSV field (RFC 4180 §2: quoted when it holds a comma, quote or line break). */
const csvField = (v: string | number): string => {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function usageCsv(rows: readonly UsageRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map((c) => csvField(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export const usageRoutes: FastifyPluginAsync<UsageApiOptions> = async (app, opts) => {
  const nowMs = opts.nowMs ?? Date.now;
  app.get('/v1/usage', {
    schema: {
      headers: { type: 'object', properties: { authorization: { type: 'string', description: 'Bearer <operator token>' } } },
    },
  }, async (req, reply) => {
    const claims = await opts.verifier.verifyAny(bearerToken(req.headers));
    if (claims.role !== 'operator') throw forbidden('GET /v1/usage needs an operator token (p2pd token --role operator)');
    const q = parseUsageQuery(req.query as Record<string, unknown>, req.headers.accept, Math.floor(nowMs() / 1000));
    const answer = await opts.usage.query(q);
    const from = new Date(q.fromHourSec * 1000).toISOString();
    const to = new Date(q.toHourSec * 1000).toISOString();
    if (q.format === 'csv') {
      return reply.header('content-type', 'text/csv; charset=utf-8').header('x-usage-truncated', String(answer.truncated)).send(usageCsv(answer.rows));
    }
    return { from, to, truncated: answer.truncated, rows: answer.rows };
  });
};
