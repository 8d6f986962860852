/**
 * Stable codes of the TURN relay and the STUN error code each is answered with (RFC 8656 §18.9,
 * RFC 8489 §14.8). The code names a refusal in logs, metrics labels and tests; the wire carries the
 * number and the RFC's reason phrase.
 */
import { P2pdError } from '../errors.ts';

export const TURN_ERRORS = {
  /** 400: a required attribute is missing or malformed, or attributes contradict each other. */
  TURN_BAD_REQUEST: 400,
  /** 401: no credentials, unknown user, expired REST username or wrong MESSAGE-INTEGRITY. */
  UNAUTHENTICATED: 401,
  /** 401: REST credentials of a session that closed (heard from the broadcast or the session store). */
  SESSION_CLOSED: 401,
  /** 403: the peer is in a denied range (DESIGN.md "Security defaults"). */
  PEER_FORBIDDEN: 403,
  /** 420: a comprehension-required attribute the relay does not understand. */
  UNKNOWN_ATTRIBUTE: 420,
  /** 437: no allocation on this 5-tuple, or another transaction created the one there. */
  ALLOCATION_MISMATCH: 437,
  /** 438: the NONCE expired or was never ours. */
  STALE_NONCE: 438,
  /** 440: the relay has no address of the requested family. */
  ADDRESS_FAMILY_NOT_SUPPORTED: 440,
  /** 441: USERNAME differs from the one that created the allocation. */
  WRONG_CREDENTIALS: 441,
  /** 442: REQUESTED-TRANSPORT other than UDP. */
  UNSUPPORTED_TRANSPORT: 442,
  /** 443: the peer's family has no relayed address in this allocation. */
  PEER_ADDRESS_FAMILY_MISMATCH: 443,
  /** 486: the user (or session) has --user-quota allocations already, or the principal --principal-quota. */
  ALLOCATION_QUOTA_REACHED: 486,
  /**
   * 508: --max-allocations reached, no relay port free, a reservation token we do not hold, or
   * the allocation holds --max-permissions permissions / --max-channels channels (RFC 8656 §9.3, §11.2).
   */
  INSUFFICIENT_CAPACITY: 508,
} as const;
export type TurnErrorCode = keyof typeof TURN_ERRORS;

/** A refusal of a TURN request; the request handler answers it as an error response. */
export class TurnError extends P2pdError {
  declare readonly code: TurnErrorCode;
  /** The STUN error code on the wire. */
  readonly stunCode: number;

  constructor(code: TurnErrorCode, message: string) {
    super(code, message, 400);
    this.stunCode = TURN_ERRORS[code];
  }
}

export const turnError = (code: TurnErrorCode, message: string): TurnError => new TurnError(code, message);
