/**
 * Remembers (sender, msgId) pairs for a window so a retried message (same msgId: an MQTT QoS 1
 * redelivery or an application retry) is acted on once. Bounded: the oldest entries go first.
 * Also meant for receiving clients (the SDK) behind an external broker, where the broker
 * delivers before the service can drop anything.
 */
export class Deduplicator {
  private readonly seen = new Map<string, number>();
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly nowMs: () => number;

  constructor(opts: { windowMs?: number; maxEntries?: number; nowMs?: () => number } = {}) {
    this.windowMs = opts.windowMs ?? 120_000;
    this.maxEntries = opts.maxEntries ?? 200_000;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /** True when this (from, msgId) was already recorded within the window. */
  has(from: string, msgId: string): boolean {
    const at = this.seen.get(`${from}\n${msgId}`);
    return at !== undefined && this.nowMs() - at < this.windowMs;
  }

  /** Records the pair; returns false when it was already there (a duplicate). */
  record(from: string, msgId: string): boolean {
    const now = this.nowMs();
    const key = `${from}\n${msgId}`;
    const at = this.seen.get(key);
    if (at !== undefined && now - at < this.windowMs) return false;
    this.seen.delete(key);
    this.seen.set(key, now);
    this.evict(now);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private evict(now: number): void {
    // Map iteration is insertion order: the oldest entries come first.
    for (const [key, at] of this.seen) {
      if (this.seen.size <= this.maxEntries && now - at < this.windowMs) break;
      this.seen.delete(key);
    }
  }
}
