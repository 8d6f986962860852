import { P2pdError } from '../errors.ts';

/** HTTP-level errors of the API (CONTRACT.md §2); areas add their own codes in their errors.ts. */
export const notFound = (what: string): P2pdError => new P2pdError('NOT_FOUND', `${what} not found`, 404);
export const badRequest = (message: string): P2pdError => new P2pdError('BAD_REQUEST', message, 400);
export const unauthorized = (message = 'missing or invalid token'): P2pdError => new P2pdError('UNAUTHORIZED', message, 401);
export const forbidden = (message: string): P2pdError => new P2pdError('FORBIDDEN', message, 403);
export const notReady = (reason: string): P2pdError => new P2pdError('NOT_READY', reason, 503);
