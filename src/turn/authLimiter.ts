/**
 * Rate limits on 401s per source IP (DESIGN.md "Security defaults"). Two budgets:
 *
 * - failures (wrong password, unknown user, expired REST credentials, bad nonce form): after
 *   `maxFailures` in one window the source is blocked until the window ends — password guessing
 *   gets a handful of tries per window, and each blocked try costs us no HMAC;
 * - challenges (the 401 that starts every allocation): a token bucket, generous enough for a
 *   hundred clients behind one NAT starting at once, so that a flood of spoofed requests cannot
 *   turn the server into a 401 amplifier.
 *
 * State is per IP and swept once a second; the table is bounded.
 */

export interface AuthLimits {
  readonly maxFailures: number;
  readonly windowSec: number;
  readonly challengesPerSec: number;
  readonly challengeBurst: number;
  /** Sources tracked at most; past it the table is cleared (an attacker with that many IPs wins nothing). */
  readonly maxSources: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = {
  maxFailures: 30,
  windowSec: 10,
  challengesPerSec: 200,
  challengeBurst: 1000,
  maxSources: 100_000,
};

interface SourceState {
  windowStart: number;
  failures: number;
  tokens: number;
  lastRefillSec: number;
}

export class AuthLimiter {
  private readonly limits: AuthLimits;
  private readonly sources = new Map<string, SourceState>();

  constructor(limits: AuthLimits = DEFAULT_AUTH_LIMITS) {
    this.limits = limits;
  }

  private state(ip: string, nowSec: number): SourceState {
    let s = this.sources.get(ip);
    if (!s) {
      if (this.sources.size >= this.limits.maxSources) this.sources.clear();
      s = { windowStart: nowSec, failures: 0, tokens: this.limits.challengeBurst, lastRefillSec: nowSec };
      this.sources.set(ip, s);
    } else if (nowSec - s.windowStart >= this.limits.windowSec) {
      s.windowStart = nowSec;
      s.failures = 0;
    }
    return s;
  }

  /** True while `ip` has used up its failures for the current window. */
  isBlocked(ip: string, nowSec: number): boolean {
    const s = this.sources.get(ip);
    if (!s) return false;
    if (nowSec - s.windowStart >= this.limits.windowSec) return false;
    return s.failures >= this.limits.maxFailures;
  }

  recordFailure(ip: string, nowSec: number): void {
    this.state(ip, nowSec).failures++;
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

  /** Forgets sources idle for a whole window with a full challenge budget. */
  sweep(nowSec: number): void {
    const l = this.limits;
    for (const [ip, s] of this.sources) {
      const idle = nowSec - s.windowStart >= l.windowSec;
      const full = s.tokens + (nowSec - s.lastRefillSec) * l.challengesPerSec >= l.challengeBurst;
      if (idle && full) this.sources.delete(ip);
    }
  }

  get size(): number {
    return this.sources.size;
  }
}
