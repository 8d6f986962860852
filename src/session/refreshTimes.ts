/**
 * When something was last refreshed, per session, so that a refresh runs at most every so often:
 * the Redis store's Cluster indexes under a stream of signaling messages (redisStore.ts `touch`).
 * Bounded: past `max` sessions the one refreshed longest ago is forgotten (and simply refreshed
 * again at its next message).
 */
export class RefreshTimes {
  private readonly at = new Map<string, number>();
  private readonly max: number;

  constructor(max = 100_000) {
    this.max = max;
  }

  /** True (and noted) when `id` was not refreshed within the last `everyMs`. */
  due(id: string, nowMs: number, everyMs: number): boolean {
    const last = this.at.get(id);
    if (last !== undefined && nowMs - last < everyMs) return false;
    // Re-inserted, so the Map's order stays oldest refresh first.
    this.at.delete(id);
    this.at.set(id, nowMs);
    if (this.at.size > this.max) {
      const oldest = this.at.keys().next();
      if (!oldest.done) this.at.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.at.size;
  }
}
