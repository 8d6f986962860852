/**
 * One token bucket per allocation (docs/turn.md "Workers and speed"): payload bytes relayed in either
 * direction take tokens; a packet that finds too few is dropped, never queued. The clock is read
 * only when the bucket runs dry, so a busy allocation looks at the time a few times a second, not
 * once per packet.
 */

/** Burst: this many seconds of the rate may pass at once (a video key frame, say). */
const BURST_SEC = 0.2;
/** The burst is never smaller than this, so one full-size datagram always fits. */
const MIN_BURST_BYTES = 16 * 1024;

const monotonicMs = (): number => performance.now();

export class TokenBucket {
  /** Bytes per millisecond. */
  private readonly rate: number;
  private readonly capacity: number;
  private readonly clock: () => number;
  private tokens: number;
  private lastMs: number;

  /** `maxBps` in bits per second (> 0); `clock` a monotonic millisecond clock. */
  constructor(maxBps: number, clock: () => number = monotonicMs) {
    this.rate = maxBps / 8 / 1000;
    this.capacity = Math.max((maxBps / 8) * BURST_SEC, MIN_BURST_BYTES);
    this.tokens = this.capacity;
    this.clock = clock;
    this.lastMs = clock();
  }

  /** Takes `bytes` if the bucket holds them; false means drop the packet. */
  take(bytes: number): boolean {
    if (this.tokens >= bytes) {
      this.tokens -= bytes;
      return true;
    }
    const now = this.clock();
    const refill = (now - this.lastMs) * this.rate;
    this.lastMs = now;
    this.tokens = Math.min(this.capacity, this.tokens + refill);
    if (this.tokens >= bytes) {
      this.tokens -= bytes;
      return true;
    }
    return false;
  }

  /**
   * Takes what the bucket holds, at most `max` bytes, and returns how much: bandwidth credit the
   * forwarding table spends for the allocation (forwarder.ts).
   */
  takeUpTo(max: number): number {
    const now = this.clock();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.lastMs) * this.rate);
    this.lastMs = now;
    const taken = Math.max(0, Math.min(max, Math.floor(this.tokens)));
    this.tokens -= taken;
    return taken;
  }
}
