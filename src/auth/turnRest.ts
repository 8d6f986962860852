/**
 * TURN REST credentials (CONTRACT.md §2; draft-uberti-behave-turn-rest-00, as coturn's
 * `use-auth-secret` / `static-auth-secret` accept them): the HTTP API mints them, the TURN server
 * checks them with the same shared secret.
 *
 *   username   = "<expiry unix seconds>:<sessionId>"
 *   credential = base64(HMAC-SHA1(secret, username))
 *
 * The TURN server then uses the credential as the long-term password (RFC 8489 §9.2:
 * key = MD5(username ":" realm ":" credential)).
 */
import { createHmac } from 'node:crypto';

export interface TurnRestCredentials {
  readonly username: string;
  readonly credential: string;
  /** Unix seconds. */
  readonly expiresAt: number;
}

/** The password the TURN server expects for `username` (whatever its expiry). */
export function turnRestPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

/** Credentials for `sessionId` (or any user id) valid until `expiresAt` (unix seconds). */
export function mintTurnRestCredentials(secret: string, sessionId: string, expiresAt: number): TurnRestCredentials {
  const username = `${Math.floor(expiresAt)}:${sessionId}`;
  return { username, credential: turnRestPassword(secret, username), expiresAt: Math.floor(expiresAt) };
}

export interface TurnRestUser {
  readonly expiresAt: number;
  /** The part after the first colon: the session id (or user id). */
  readonly sessionId: string;
}

/**
 * Reads a REST username; undefined when it is not one (no `<digits>:` prefix) or has expired
 * at `nowSec`. The caller then checks MESSAGE-INTEGRITY with {@link turnRestPassword}.
 */
export function parseTurnRestUsername(username: string, nowSec: number): TurnRestUser | undefined {
  const colon = username.indexOf(':');
  if (colon <= 0 || colon > 12) return undefined;
  const head = username.slice(0, colon);
  if (!/^\d+$/.test(head)) return undefined;
  const expiresAt = Number(head);
  if (expiresAt < nowSec) return undefined;
  return { expiresAt, sessionId: username.slice(colon + 1) };
}
