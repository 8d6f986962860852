import { P2pdError } from '../errors.ts';

/** HTTP-level errors of the API (CONTRACT.md §2); areas add their own codes in their errors.ts. */
export const notFound = (what: string): P2pdError => new P2pdError('NOT_FOUND', `${what} not found`, 404);
export const badRequest = (message: string): P2pdError => new P2pdError('BAD_REQUEST', message, 400);
export const forbidden = (message: string): P2pdError => new P2pdError('FORBIDDEN', message, 403);
export const notReady = (reason: string): P2pdError => new P2pdError('NOT_READY', reason, 503);

// Exposure bounds of the HTTP port (docs/client.md "Limits").
export const rateLimited = (scope: 'token' | 'source', retryAfterSec: number): P2pdError =>
  new P2pdError('RATE_LIMITED', `too many requests for this ${scope === 'token' ? 'token' : 'source address'}: retry after ${retryAfterSec} s`, 429);
export const devTokensLoopbackOnly = (): P2pdError =>
  new P2pdError('DEV_TOKENS_LOOPBACK_ONLY', 'development tokens are for callers on this machine (loopback) only; the operator can open them with --dev-tokens lan, or give --jwt-secret and mint real tokens', 403);
export const hookForbidden = (why: string): P2pdError => new P2pdError('HOOK_FORBIDDEN', why, 403);
export const loginsRateLimited = (retryAfterSec: number): P2pdError =>
  new P2pdError('RATE_LIMITED', `too many failed logins from this source: retry after ${retryAfterSec} s`, 429);
