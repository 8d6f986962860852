/**
 * The sweeper: every interval, closes (reason `swept`) the open sessions that sent no keepalive
 * for MISSED_INTERVALS intervals. Every node runs one; the store's conditional close makes each
 * stale session close exactly once however many nodes sweep at the same moment, and the close
 * is published like any other, so the node holding the session's TURN allocations releases them.
 */
import type { Logger } from '../log.ts';
import { sessionSweepSeconds } from '../metrics/metrics.ts';
import type { SessionStore } from './store.ts';

/** Intervals without a keepalive after which a session is stale. */
export const MISSED_INTERVALS = 3;

export interface SweeperOptions {
  readonly store: SessionStore;
  /** Time between sweeps (`--sweep-interval`, default 300 s). */
  readonly intervalMs: number;
  /** Sessions silent this long are stale (default MISSED_INTERVALS × intervalMs). */
  readonly staleAfterMs?: number;
  /** Ids read from the index per round trip. */
  readonly batch?: number;
  readonly log?: Logger | undefined;
  readonly nowMs?: () => number;
}

export interface SweepResult {
  readonly closed: number;
  /** Stale candidates examined (some were closed by another node or seen since). */
  readonly examined: number;
  readonly durationMs: number;
}

export class SessionSweeper {
  private readonly opts: SweeperOptions;
  private readonly nowMs: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepResult> | undefined;
  private stopped = true;

  constructor(opts: SweeperOptions) {
    this.opts = opts;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = (): void => {
      // A little jitter keeps the nodes of a cluster from sweeping in lockstep.
      const delay = this.opts.intervalMs * (0.9 + Math.random() * 0.2);
      this.timer = setTimeout(() => {
        this.sweepOnce()
          .catch((err: unknown) => this.opts.log?.warn({ err: (err as Error).message }, 'sweep failed'))
          .finally(() => { if (!this.stopped) tick(); });
      }, delay);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One sweep now (a sweep already running is joined, not doubled). */
  sweepOnce(): Promise<SweepResult> {
    this.running ??= this.sweep().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async sweep(): Promise<SweepResult> {
    const started = performance.now();
    const { store } = this.opts;
    const batch = this.opts.batch ?? 1000;
    const nowMs = this.nowMs();
    const before = Math.floor((nowMs - (this.opts.staleAfterMs ?? MISSED_INTERVALS * this.opts.intervalMs)) / 1000);
    const now = Math.floor(nowMs / 1000);
    const seen = new Set<string>();
    let closed = 0;
    for (;;) {
      const ids = (await store.findStale(before, batch)).filter((id) => !seen.has(id));
      if (ids.length === 0) break;
      for (const id of ids) seen.add(id);
      closed += (await store.closeMany(ids, 'swept', now, { ifLastSeenBefore: before })).length;
    }
    const durationMs = performance.now() - started;
    sessionSweepSeconds.observe(durationMs / 1000);
    if (closed > 0) this.opts.log?.info({ closed, examined: seen.size, durationMs: Math.round(durationMs) }, 'swept stale sessions');
    return { closed, examined: seen.size, durationMs };
  }
}
