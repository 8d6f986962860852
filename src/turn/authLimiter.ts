/**
 * Rate limits on 401s per source IP (docs/security.md). Two budgets:
 *
 * - failures (wrong password, unknown user, expired REST credentials): after `maxFailures` in one
 *   window the source's new requests are dropped until the window ends — password guessing gets a
 *   handful of tries per window, and each blocked try costs us no HMAC. The server counts a
 *   failure only once the request's NONCE checked out: our nonces are HMACs over the source IP
 *   (nonce.ts), so a valid one proves the sender received our 401 at that address, and a spoofed
 *   source cannot spend a victim's budget. Requests on a 5-tuple that holds an allocation are
 *   never blocked (the server skips the check for them). With several workers the budget is the
 *   node's: workers report failures to the primary, which announces blocks to all (`block`).
 * - challenges (the 401 that starts every allocation, 438s, 400s before the nonce): a token
 *   bucket, generous enough for a hundred clients behind one NAT starting at once, so that a flood
 *   of spoofed requests cannot turn the server into a 401 amplifier.
 *
 * State is per IP. The table is bounded: past `maxSources` the least recently active source is
 * forgotten, one per new source (no wholesale clear), and idle ones are swept a slice at a time.
 */

export interface AuthLimits {
  readonly maxFailures: number;
  readonly windowSec: number;
  readonly challengesPerSec: number;
  readonly challengeBurst: number;
  /** Sources tracked at most; past it the least recently active one is forgotten. */
  readonly maxSources: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = {
  maxFailures: 30,
  windowSec: 10,
  challengesPerSec: 200,
  challengeBurst: 1000,
  maxSources: 100_000,
};

/** Sources a sweep looks at, at most (the table is in activity order: the idle ones come first). */
const SWEEP_SLICE = 10_000;

interface SourceState {
  windowStart: number;
  failures: number;
  tokens: number;
  lastRefillSec: number;
  /** Blocked until then (unix s) by the node's shared count; 0 = not. */
  blockedUntilSec: number;
}

export class AuthLimiter {
  private readonly limits: AuthLimits;
  /** In order of last activity, least recent first (an entry moves to the end when touched). */
  private readonly sources = new Map<string, SourceState>();

  constructor(limits: AuthLimits = DEFAULT_AUTH_LIMITS) {
    this.limits = limits;
  }

  private state(ip: string, nowSec: number): SourceState {
    let s = this.sources.get(ip);
    if (s) {
      this.sources.delete(ip);
    } else {
      if (this.sources.size >= this.limits.maxSources) {
        const oldest = this.sources.keys().next();
        if (!oldest.done) this.sources.delete(oldest.value);
      }
      s = { windowStart: nowSec, failures: 0, tokens: this.limits.challengeBurst, lastRefillSec: nowSec, blockedUntilSec: 0 };
    }
    this.sources.set(ip, s);
    if (nowSec - s.windowStart >= this.limits.windowSec) {
      s.windowStart = nowSec;
      s.failures = 0;
    }
    return s;
  }

  /** True while `ip` has used up its failures for the current window (here or node-wide). */
  isBlocked(ip: string, nowSec: number): boolean {
    const s = this.sources.get(ip);
    if (!s) return false;
    if (s.blockedUntilSec > nowSec) return true;
    if (nowSec - s.windowStart >= this.limits.windowSec) return false;
    return s.failures >= this.limits.maxFailures;
  }

  /**
   * Counts a failure (the request's nonce was valid). Returns the end of the block (unix s) when
   * this failure used up the budget, else 0.
   */
  recordFailure(ip: string, nowSec: number): number {
    const s = this.state(ip, nowSec);
    s.failures++;
    return s.failures === this.limits.maxFailures ? s.windowStart + this.limits.windowSec : 0;
  }

  /** The node's count says `ip` is blocked until `untilSec` (another worker saw the failures). */
  block(ip: string, untilSec: number, nowSec: number): void {
    const s = this.state(ip, nowSec);
    s.blockedUntilSec = Math.max(s.blockedUntilSec, untilSec);
  }

  /** May we answer one more challenge (401 without a failure, or 438) to `ip`? */
  allowChallenge(ip: string, nowSec: number): boolean {
    const s = this.state(ip, nowSec);
    const l = this.limits;
    s.tokens = Math.min(l.challengeBurst, s.tokens + (nowSec - s.lastRefillSec) * l.challengesPerSec);
    s.lastRefillSec = nowSec;
    if (s.tokens < 1) return false;
    s.tokens--;
    return true;
  }

  /** Forgets sources idle for a whole window with a full challenge budget, a slice at a time. */
  sweep(nowSec: number): void {
    const l = this.limits;
    let budget = SWEEP_SLICE;
    for (const [ip, s] of this.sources) {
      if (budget-- <= 0) return;
      const idle = nowSec - s.windowStart >= l.windowSec && s.blockedUntilSec <= nowSec;
      const full = s.tokens + (nowSec - s.lastRefillSec) * l.challengesPerSec >= l.challengeBurst;
      if (idle && full) this.sources.delete(ip);
    }
  }

  get size(): number {
    return this.sources.size;
  }
}

/**
 * The primary's side of the node-wide failure budget: workers report each counted failure; when
 * a source uses up the budget, every worker is told to block it until the window ends.
 */
export function serveAuthFailures(limits: AuthLimits = DEFAULT_AUTH_LIMITS): {
  onFailure(ip: string, block: (ip: string, untilSec: number) => void): void;
  sweep(): void;
} {
  const book = new AuthLimiter(limits);
  return {
    onFailure(ip, block) {
      const untilSec = book.recordFailure(ip, Date.now() / 1000);
      if (untilSec > 0) block(ip, untilSec);
    },
    sweep() {
      book.sweep(Date.now() / 1000);
    },
  };
}
