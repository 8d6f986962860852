/**
 * Turns what the TURN relay metered per session (turn/usageMeter.ts) into usage per app and per
 * device (docs/operations.md "Usage"): the session record names both. Batches arrive from the
 * node's TURN workers; the recorder resolves their sessions (a bounded cache in front of the
 * session store), sums them per hour, app and device, and writes one batch to the usage store
 * about once a second at most. A write that fails is kept for the next one (up to a bound).
 */
import type { Logger } from '../log.ts';
import type { SessionStore } from './store.ts';
import type { UsageIncrement, UsageKind, UsageStore } from './usageStore.ts';

/** One session's relayed usage in one hour (turn/usageMeter.ts RelayUsage). */
export interface SessionUsage {
  readonly sessionId: string;
  readonly hourSec: number;
  readonly bytes: number;
  readonly relaySec: number;
}

export interface UsageRecorderOptions {
  readonly sessions: Pick<SessionStore, 'get'>;
  readonly usage: UsageStore;
  readonly log?: Logger | undefined;
  /** How long batches gather before one write (default 1 s). */
  readonly delayMs?: number;
}

/** Sessions whose app and device are remembered (the newest). */
const CACHE_MAX = 10_000;
/** Unwritten sums kept while the store fails, at most (beyond, the oldest are dropped and logged). */
const PENDING_MAX = 100_000;

interface Owner {
  readonly appId: string;
  readonly deviceId: string;
}

export class UsageRecorder {
  private readonly opts: UsageRecorderOptions;
  private readonly owners = new Map<string, Owner | null>();
  private incoming: SessionUsage[] = [];
  /** `${hourSec}|${kind}|${id}` → sum not yet written. */
  private readonly pending = new Map<string, UsageIncrement>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(opts: UsageRecorderOptions) {
    this.opts = opts;
  }

  /** Takes a batch; it is written within about `delayMs`. */
  record(batch: readonly SessionUsage[]): void {
    if (this.stopped || batch.length === 0) return;
    for (const u of batch) this.incoming.push(u);
    if (this.incoming.length > PENDING_MAX) {
      this.opts.log?.error({ dropped: this.incoming.length - PENDING_MAX }, 'usage: too much unwritten; the oldest samples were dropped');
      this.incoming.splice(0, this.incoming.length - PENDING_MAX);
    }
    this.retrySoon();
  }

  private async owner(sessionId: string): Promise<Owner | null> {
    const known = this.owners.get(sessionId);
    if (known !== undefined) return known;
    const s = await this.opts.sessions.get(sessionId);
    const o = s === undefined ? null : { appId: s.appId, deviceId: s.deviceId };
    if (this.owners.size >= CACHE_MAX) this.owners.delete(this.owners.keys().next().value as string);
    this.owners.set(sessionId, o);
    return o;
  }

  private addPending(hourSec: number, kind: UsageKind, id: string, bytes: number, relaySec: number): void {
    const key = `${hourSec}|${kind}|${id}`;
    const p = this.pending.get(key);
    if (p) this.pending.set(key, { ...p, bytes: p.bytes + bytes, relaySec: p.relaySec + relaySec });
    else this.pending.set(key, { hourSec, kind, id, bytes, relaySec });
  }

  /** Resolves what came in and writes every pending sum (one write at a time). */
  flush(): Promise<void> {
    this.running = (this.running ?? Promise.resolve()).then(() => this.write());
    return this.running;
  }

  private async write(): Promise<void> {
    const batch = this.incoming;
    this.incoming = [];
    let unknown = 0;
    for (const u of batch) {
      let o: Owner | null;
      try {
        o = await this.owner(u.sessionId);
      } catch (err) {
        // The store is down: keep the sample for the next flush.
        this.incoming.push(u);
        this.opts.log?.warn({ err, sessionId: u.sessionId }, 'usage: cannot read the session; kept for later');
        continue;
      }
      if (o === null) {
        unknown++;
        continue;
      }
      this.addPending(u.hourSec, 'app', o.appId, u.bytes, u.relaySec);
      this.addPending(u.hourSec, 'device', o.deviceId, u.bytes, u.relaySec);
    }
    if (unknown > 0) this.opts.log?.info({ samples: unknown }, 'usage of sessions whose record is gone was not recorded');
    if (this.pending.size === 0) {
      if (this.incoming.length > 0 && !this.stopped) this.retrySoon();
      return;
    }
    const sums = [...this.pending.values()];
    this.pending.clear();
    try {
      await this.opts.usage.add(sums);
    } catch (err) {
      this.opts.log?.warn({ err, rows: sums.length }, 'usage: write failed; kept for the next one');
      for (const s of sums.slice(Math.max(0, sums.length - PENDING_MAX))) this.addPending(s.hourSec, s.kind, s.id, s.bytes, s.relaySec);
      if (sums.length > PENDING_MAX) this.opts.log?.error({ dropped: sums.length - PENDING_MAX }, 'usage: too much unwritten; the oldest sums were dropped');
    }
    if ((this.incoming.length > 0 || this.pending.size > 0) && !this.stopped) this.retrySoon();
  }

  private retrySoon(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.opts.delayMs ?? 1000);
    this.timer.unref();
  }

  /** Writes what is left, then takes nothing more. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    this.stopped = true;
  }
}
