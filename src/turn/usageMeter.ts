/**
 * What each session's allocations relayed, per hour (docs/operations.md "Usage"): the meter
 * listens to the allocation events (events.ts) and, every `flushMs` and shortly after an
 * allocation is deleted, hands on the bytes and relaying seconds each session's allocations
 * added since the last look. It reads the allocation's life totals (`bytesTotal`, `relayingSec`,
 * folded in by the manager's sweep), so nothing runs per packet. An allocation whose credentials
 * name no session (static users, `<expiry>::<sub>`) is not metered: usage is told per session.
 */
import type { Allocation } from './allocation.ts';
import type { TurnEvents } from './events.ts';

/** One session's relayed usage in one hour, since the last report. */
export interface RelayUsage {
  readonly sessionId: string;
  /** Start of the hour, unix seconds. */
  readonly hourSec: number;
  readonly bytes: number;
  readonly relaySec: number;
}

export interface UsageMeterOptions {
  readonly events: TurnEvents;
  /** Gets each non-empty batch (in a worker: sent to the primary; server/usageRecorder.ts). */
  readonly sink: (batch: RelayUsage[]) => void;
  /** How often live allocations are read (default 10 s). */
  readonly flushMs?: number;
  /** After a delete, how soon its last counts go (default 1 s; deletes within it share a batch). */
  readonly deleteFlushMs?: number;
  readonly nowMs?: () => number;
}

/** Start of the hour that holds `ms`, in unix seconds. */
export const hourOf = (ms: number): number => Math.floor(ms / 3_600_000) * 3600;

interface Reported {
  bytes: number;
  sec: number;
}

export class UsageMeter {
  private readonly opts: UsageMeterOptions;
  private readonly nowMs: () => number;
  /** Live metered allocations → what was reported of them so far. */
  private readonly live = new Map<Allocation, Reported>();
  /** Counts of allocations deleted since the last flush, by session and hour. */
  private readonly pending = new Map<string, { sessionId: string; hourSec: number; bytes: number; relaySec: number }>();
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private readonly offs: (() => void)[] = [];

  constructor(opts: UsageMeterOptions) {
    this.opts = opts;
    this.nowMs = opts.nowMs ?? Date.now;
    const created = (a: Allocation): void => {
      if (a.sessionId !== undefined) this.live.set(a, { bytes: a.bytesTotal, sec: a.relayingSec });
    };
    const deleted = (a: Allocation): void => {
      const r = this.live.get(a);
      if (!r) return;
      this.live.delete(a);
      this.add(a, r);
      this.soon ??= setTimeout(() => { this.soon = undefined; this.flush(); }, opts.deleteFlushMs ?? 1000);
      this.soon.unref();
    };
    opts.events.on('allocationCreated', created);
    opts.events.on('allocationDeleted', deleted);
    this.offs.push(() => opts.events.off('allocationCreated', created), () => opts.events.off('allocationDeleted', deleted));
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.opts.flushMs ?? 10_000);
    this.timer.unref();
  }

  /** Adds what `a` relayed since `r` to the pending batch, and moves `r` up to now. */
  private add(a: Allocation, r: Reported): void {
    const bytes = a.bytesTotal - r.bytes;
    const relaySec = a.relayingSec - r.sec;
    if (bytes <= 0 && relaySec <= 0) return;
    r.bytes = a.bytesTotal;
    r.sec = a.relayingSec;
    const sessionId = a.sessionId as string;
    const hourSec = hourOf(this.nowMs());
    const key = `${hourSec}|${sessionId}`;
    const p = this.pending.get(key);
    if (p) {
      p.bytes += bytes;
      p.relaySec += relaySec;
    } else this.pending.set(key, { sessionId, hourSec, bytes, relaySec });
  }

  /** Reads every live allocation and hands on the batch (if any). */
  flush(): void {
    for (const [a, r] of this.live) this.add(a, r);
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    this.opts.sink(batch);
  }

  /** Stops the timers and hands on what is left (call after the allocations are deleted). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.soon = undefined;
    this.flush();
    for (const off of this.offs) off();
  }
}
