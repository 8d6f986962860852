/**
 * The long-term credential mechanism of TURN (RFC 8489 §9.2, RFC 8656 §5) with two sources of
 * passwords at once: static users (--user NAME:PASS) and TURN REST credentials (--auth-secret;
 * username "<expiry>:<sessionId>:<sub>", "<expiry>::<sub>" or coturn's "<expiry>:<x>", password
 * base64(HMAC-SHA1(secret, username)); src/auth/turnRest.ts; during a rotation also with
 * --auth-secret-previous, docs/operations.md "Secret rotation"). A REST username's expiry is
 * checked on every request, also on an allocation that already exists (as coturn does).
 * Nonces are stateless (nonce.ts). MD5 and SHA-256 keys (PASSWORD-ALGORITHM), MESSAGE-INTEGRITY
 * and MESSAGE-INTEGRITY-SHA256 are all accepted; USERHASH works for static users.
 *
 * Pure policy: takes a decoded request and the client's IP, says who it is or why not. The
 * server writes the answer.
 */
import { createHmac } from 'node:crypto';
import {
  Attr, PasswordAlgorithm, attrValue, checkMessageIntegrity, checkMessageIntegritySha256, computeUserhash,
  encodePasswordAlgorithms, findAttr, longTermKey, readNonce, readPasswordAlgorithm, readUserhash, readUsername,
  StunDecodeError, type StunMessage, type PasswordAlgorithmName,
} from '../stun/index.ts';
import { parseTurnRestUsername, turnRestPassword } from '../auth/turnRest.ts';
import { NonceIssuer } from './nonce.ts';

export interface TurnUser {
  readonly name: string;
  readonly password: string;
}

export interface AuthOptions {
  readonly realm: string;
  /** TURN REST shared secret; empty disables REST credentials. */
  readonly authSecret: string;
  /**
   * The secret --auth-secret replaced (--auth-secret-previous, docs/operations.md "Secret
   * rotation"): REST credentials minted with it still verify until it is dropped.
   */
  readonly previousAuthSecret?: string | undefined;
  readonly users: readonly TurnUser[];
  readonly nonceLifetimeSec: number;
  /** Key of the nonce HMAC; every worker and node that must accept the same nonces shares it. */
  readonly nonceKey: Buffer;
}

/** Who a request comes from, once its MESSAGE-INTEGRITY checked out. */
export interface Principal {
  readonly username: string;
  /** The long-term key (MD5 or SHA-256 of username:realm:password). */
  readonly key: Buffer;
  /** The request carried MESSAGE-INTEGRITY-SHA256: answer with it too. */
  readonly sha256Integrity: boolean;
  /** From a REST username: the session the credentials were minted for (none for "<expiry>::<sub>"). */
  readonly sessionId: string | undefined;
  /**
   * From a REST username that names it: who they were minted for (the token's sub). Undefined for
   * static users and for "<expiry>:<sessionId>", whose principal the primary reads from the store.
   */
  readonly sub: string | undefined;
  /** From a REST username: its expiry, unix seconds; undefined for static users. */
  readonly expiresAtSec: number | undefined;
}

/** Why a request was refused; `reason` labels turn_auth_failures_total. */
export interface AuthRefusal {
  readonly code: 400 | 401 | 438;
  readonly reason: AuthFailureReason;
}

export type AuthFailureReason =
  | 'challenge' // no MESSAGE-INTEGRITY: the normal first round trip
  | 'missing_attributes'
  | 'stale_nonce'
  | 'bad_password_algorithm'
  | 'unknown_user'
  | 'rest_expired'
  | 'bad_integrity';

/** The PASSWORD-ALGORITHMS we offer, most preferred first (RFC 8489 §14.11). */
export const OFFERED_PASSWORD_ALGORITHMS = encodePasswordAlgorithms([
  { algorithm: PasswordAlgorithm.SHA256, params: Buffer.alloc(0) },
  { algorithm: PasswordAlgorithm.MD5, params: Buffer.alloc(0) },
]);

/**
 * What the TURN server asks of its credential check (as pion/turn's AuthHandler): who a request
 * comes from or why not, and the REALM and NONCE of a challenge. {@link TurnAuthenticator} is the
 * one p2pd runs; the server takes any.
 */
export interface Authenticator {
  readonly realm: string;
  /** `known`: the principal of the allocation on the request's 5-tuple, if any. */
  authenticate(msg: StunMessage, clientIp: string, nowSec: number, known?: Principal): Principal | AuthRefusal;
  /** A NONCE for a 401 or 438 to this client (RFC 8489 §9.2.4). */
  nonce(clientIp: string, nowSec: number): string;
}

interface StaticEntry {
  readonly name: string;
  readonly md5: Buffer;
  readonly sha256: Buffer;
}

export class TurnAuthenticator implements Authenticator {
  readonly realm: string;
  readonly nonces: NonceIssuer;
  private readonly secret: string;
  private readonly previousSecret: string | undefined;
  private readonly users = new Map<string, StaticEntry>();
  private readonly byUserhash = new Map<string, StaticEntry>();

  constructor(opts: AuthOptions) {
    this.realm = opts.realm;
    this.secret = opts.authSecret;
    this.previousSecret = opts.previousAuthSecret === '' ? undefined : opts.previousAuthSecret;
    this.nonces = new NonceIssuer(opts.nonceKey, opts.nonceLifetimeSec);
    for (const u of opts.users) {
      const entry: StaticEntry = {
        name: u.name,
        md5: longTermKey(u.name, opts.realm, u.password, 'md5'),
        sha256: longTermKey(u.name, opts.realm, u.password, 'sha256'),
      };
      this.users.set(u.name, entry);
      this.byUserhash.set(computeUserhash(u.name, opts.realm).toString('hex'), entry);
    }
  }

  nonce(clientIp: string, nowSec: number): string {
    return this.nonces.issue(clientIp, nowSec);
  }

  /**
   * Checks a request's credentials (RFC 8489 §9.2.4, in its order). `known` is the principal of
   * the allocation on this 5-tuple, if any: its key is reused instead of derived again.
   */
  authenticate(msg: StunMessage, clientIp: string, nowSec: number, known?: Principal): Principal | AuthRefusal {
    const mi = msg.integrityIndex;
    const mi256 = msg.integritySha256Index;
    if (mi < 0 && mi256 < 0) return { code: 401, reason: 'challenge' };
    const ui = findAttr(msg, Attr.Username);
    const hi = ui < 0 ? findAttr(msg, Attr.Userhash) : -1;
    const ri = findAttr(msg, Attr.Realm);
    const ni = findAttr(msg, Attr.Nonce);
    if ((ui < 0 && hi < 0) || ri < 0 || ni < 0) return { code: 400, reason: 'missing_attributes' };
    try {
      if (this.nonces.check(readNonce(attrValue(msg, ni)), clientIp, nowSec) !== 'ok') return { code: 438, reason: 'stale_nonce' };
      const algorithm = this.passwordAlgorithm(msg);
      if (algorithm === undefined) return { code: 400, reason: 'bad_password_algorithm' };

      let username: string;
      let key: Buffer | undefined;
      let sessionId: string | undefined;
      let sub: string | undefined;
      let expiresAtSec: number | undefined;
      let rest = false;
      if (ui >= 0) {
        username = readUsername(attrValue(msg, ui));
      } else {
        const entry = this.byUserhash.get(readUserhash(attrValue(msg, hi)).toString('hex'));
        if (!entry) return { code: 401, reason: 'unknown_user' };
        username = entry.name;
      }
      // An MD5 key is 16 bytes, a SHA-256 one 32: the length tells which the allocation holds.
      if (known && known.username === username && known.key.length === (algorithm === 'md5' ? 16 : 32)) {
        // RFC 8656 §5 and coturn: credentials are checked on every request of an allocation,
        // so REST credentials stop working at their expiry even on a 5-tuple that has one.
        if (known.expiresAtSec !== undefined && known.expiresAtSec < nowSec) return { code: 401, reason: 'rest_expired' };
        key = known.key;
        sessionId = known.sessionId;
        sub = known.sub;
        expiresAtSec = known.expiresAtSec;
      } else {
        const entry = this.users.get(username);
        if (entry) key = algorithm === 'md5' ? entry.md5 : entry.sha256;
        else if (this.secret !== '') {
          const parsed = parseTurnRestUsername(username, nowSec);
          if (!parsed) return { code: 401, reason: /^\d+:/.test(username) ? 'rest_expired' : 'unknown_user' };
          key = longTermKey(username, this.realm, turnRestPassword(this.secret, username), algorithm);
          sessionId = parsed.sessionId;
          sub = parsed.principal;
          expiresAtSec = parsed.expiresAt;
          rest = true;
        } else return { code: 401, reason: 'unknown_user' };
      }
      // RFC 8489 §9.2.4: with both present, MESSAGE-INTEGRITY-SHA256 is the one to check.
      const check = mi256 >= 0 ? checkMessageIntegritySha256 : checkMessageIntegrity;
      if (!check(msg, key)) {
        // Credentials minted before a rotation: the previous secret verifies, never mints.
        if (!rest || this.previousSecret === undefined) return { code: 401, reason: 'bad_integrity' };
        key = longTermKey(username, this.realm, turnRestPassword(this.previousSecret, username), algorithm);
        if (!check(msg, key)) return { code: 401, reason: 'bad_integrity' };
      }
      return { username, key, sha256Integrity: mi256 >= 0, sessionId, sub, expiresAtSec };
    } catch (err) {
      if (err instanceof StunDecodeError) return { code: 400, reason: 'missing_attributes' };
      throw err;
    }
  }

  /**
   * RFC 8489 §9.2.4: our nonces carry the password-algorithms feature, so a request naming an
   * algorithm must also echo our PASSWORD-ALGORITHMS unchanged (no downgrade), and name one of
   * them. A request with neither comes from an RFC 5389 client: MD5. Undefined = 400.
   */
  private passwordAlgorithm(msg: StunMessage): PasswordAlgorithmName | undefined {
    const ai = findAttr(msg, Attr.PasswordAlgorithm);
    const li = findAttr(msg, Attr.PasswordAlgorithms);
    if (ai < 0 && li < 0) return 'md5';
    if (ai < 0 || li < 0) return undefined;
    if (!attrValue(msg, li).equals(OFFERED_PASSWORD_ALGORITHMS)) return undefined;
    const a = readPasswordAlgorithm(attrValue(msg, ai));
    if (a.algorithm === PasswordAlgorithm.MD5) return 'md5';
    if (a.algorithm === PasswordAlgorithm.SHA256) return 'sha256';
    return undefined;
  }
}

/** The nonce key every worker derives from the shared --auth-secret. */
export function nonceKeyFrom(authSecret: string): Buffer {
  return createHmac('sha256', authSecret).update('p2pd turn nonce v1').digest();
}
