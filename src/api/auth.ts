/**
 * Bearer tokens on HTTP requests. `authenticate` works on anything with headers (a fastify
 * request, a WebSocket upgrade's IncomingMessage), so every HTTP entry point checks tokens alike.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { tokenInvalid, tokenMissing } from '../errors.ts';
import type { ClientClaims, TokenVerifier } from '../auth/token.ts';

/**
 * The token of an Authorization value `Bearer <token>` (RFC 6750 §2.1), or undefined for none or
 * another scheme. The scheme is case-insensitive (RFC 7235 §2.1): `bearer x` is the same.
 */
export function parseBearer(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

/** The token of `Authorization: Bearer <token>`; TOKEN_MISSING without one, TOKEN_INVALID for another scheme. */
export function bearerToken(headers: IncomingHttpHeaders): string {
  const h = headers.authorization;
  if (h === undefined || h.trim() === '') throw tokenMissing();
  const token = parseBearer(h);
  if (token === undefined) throw tokenInvalid('expected Authorization: Bearer <token>');
  return token;
}

/** The verified claims of the request's bearer token (TOKEN_MISSING / TOKEN_INVALID / TOKEN_EXPIRED, 401). */
export function authenticate(request: { readonly headers: IncomingHttpHeaders }, verifier: TokenVerifier): Promise<ClientClaims> {
  let token: string;
  try {
    token = bearerToken(request.headers);
  } catch (err) {
    return Promise.reject(err);
  }
  return verifier.verify(token);
}
