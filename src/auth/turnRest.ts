/**
 * TURN REST credentials (docs/turn.md "Credentials"; draft-uberti-behave-turn-rest-00, as coturn's
 * `use-auth-secret` / `static-auth-secret` accept them): the HTTP API mints them, the TURN server
 * checks them with the same shared secret.
 *
 *   username   = "<expiry>:<sessionId>"         session credentials (the public format of the API)
 *              | "<expiry>::<sub>"              GET /v1/ice-servers (no session; sub = the token's sub)
 *              | "<expiry>:<sessionId>:<sub>"   also accepted: a session with its principal named
 *   credential = base64(HMAC-SHA1(secret, username))
 *
 * Session ids hold no ':' (^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$), so the second ':' ends the session
 * field and everything after it is the sub (which may hold ':'). Session and principal never share
 * a field: the principal of "<expiry>:<sessionId>" is the session's app, which the TURN node reads
 * from the session store (or, for a session the store does not know — an outside, coturn-style
 * issuer's "<expiry>:<userid>" — a principal of its own that no token sub can spell). So a
 * client-chosen session id equal to someone's sub names nothing of theirs (docs/turn.md "REST
 * credentials").
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

/**
 * Credentials valid until `expiresAt` (unix seconds): for session `sessionId` the two-field form;
 * with `sessionId` '' (no session) the principal `sub` goes in the third field ("<expiry>::<sub>").
 */
export function mintTurnRestCredentials(secret: string, sessionId: string, expiresAt: number, sub?: string): TurnRestCredentials {
  const exp = Math.floor(expiresAt);
  const username = sessionId !== '' || sub === undefined ? `${exp}:${sessionId}` : `${exp}::${sub}`;
  return { username, credential: turnRestPassword(secret, username), expiresAt: exp };
}

export interface TurnRestUser {
  readonly expiresAt: number;
  /** The session field: the session the credentials were minted for; undefined when empty. */
  readonly sessionId: string | undefined;
  /**
   * Who the credentials were minted for (the token's sub), when the username names it; undefined
   * for "<expiry>:<sessionId>", whose principal is the session's app (looked up in the store).
   */
  readonly principal: string | undefined;
}

/**
 * Reads a REST username; undefined when it is not one (no `<digits>:` prefix, nothing after it)
 * or has expired at `nowSec`. The caller then checks MESSAGE-INTEGRITY with {@link turnRestPassword}.
 */
export function parseTurnRestUsername(username: string, nowSec: number): TurnRestUser | undefined {
  const colon = username.indexOf(':');
  if (colon <= 0 || colon > 12) return undefined;
  const head = username.slice(0, colon);
  if (!/^\d+$/.test(head)) return undefined;
  const expiresAt = Number(head);
  if (expiresAt < nowSec) return undefined;
  const rest = username.slice(colon + 1);
  const second = rest.indexOf(':');
  if (second < 0) return rest === '' ? undefined : { expiresAt, sessionId: rest, principal: undefined };
  const sessionId = rest.slice(0, second);
  const principal = rest.slice(second + 1);
  if (principal === '') return undefined;
  return { expiresAt, sessionId: sessionId === '' ? undefined : sessionId, principal };
}
