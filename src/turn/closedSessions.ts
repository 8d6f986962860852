/**
 * Session ids this process heard closing (the `release-session` broadcast every node and worker
 * gets; src/server/sessionServices.ts): an Allocate with REST credentials of one of them is
 * refused at once, without asking the session store. Bounded and expiring: past `maxEntries` the oldest
 * close is forgotten (the store check in the primary still catches it; docs/turn.md), and an
 * entry lives `ttlSec` (a session's credentials never outlive its closed record).
 */

export const DEFAULT_CLOSED_SESSIONS = 100_000;

export class ClosedSessions {
  private readonly maxEntries: number;
  private readonly ttlSec: number;
  /** Session id → when it is forgotten (unix s); in insertion order, so the oldest comes first. */
  private readonly closed = new Map<string, number>();

  constructor(ttlSec: number, maxEntries = DEFAULT_CLOSED_SESSIONS) {
    this.ttlSec = ttlSec;
    this.maxEntries = maxEntries;
  }

  add(sessionId: string, nowSec: number): void {
    this.closed.delete(sessionId);
    if (this.closed.size >= this.maxEntries) {
      const oldest = this.closed.keys().next();
      if (!oldest.done) this.closed.delete(oldest.value);
    }
    this.closed.set(sessionId, nowSec + this.ttlSec);
  }

  has(sessionId: string, nowSec: number): boolean {
    const until = this.closed.get(sessionId);
    return until !== undefined && until > nowSec;
  }

  /** Forgets entries past their time, oldest first, at most `budget` of them per call. */
  sweep(nowSec: number, budget = 1000): void {
    for (const [id, until] of this.closed) {
      if (until > nowSec || budget-- <= 0) return;
      this.closed.delete(id);
    }
  }

  get size(): number {
    return this.closed.size;
  }
}
