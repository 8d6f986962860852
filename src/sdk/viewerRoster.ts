/**
 * The viewers a device serves, one per session, and the rules of who is one (docs/client.md
 * "Devices"): only the session's app speaks for it (another client's message on the same session
 * id is ignored); a new viewer is refused with DEVICE_BUSY beyond `maxViewers`, and with
 * SESSION_UNKNOWN when its first offer is an ICE restart (the device restarted and lost that peer:
 * a restart cannot work, the app must open a new session); a viewer with no sign of life for
 * `idleMs` is handed to `onIdle` by a sweep on the injected clock.
 */
import type { Clock } from './clock.ts';

export interface RosterEntry {
  readonly sessionId: string;
  readonly appId: string;
  /** Clock ms of its last sign of life (an offer, a keepalive, a channel message, a connected path). */
  lastSignAt: number;
}

export interface RosterOptions<V extends RosterEntry> {
  readonly clock: Clock;
  /** Viewers at once (default 10, as the service's --max-viewers). */
  readonly maxViewers?: number | undefined;
  /** Default 30 s. */
  readonly idleMs?: number | undefined;
  readonly onIdle: (viewer: V) => void;
}

/** Why a new viewer is turned away (the `error` code it is sent). */
export type Refusal = 'DEVICE_BUSY' | 'SESSION_UNKNOWN';

export const DEFAULT_MAX_VIEWERS = 10;
export const DEFAULT_IDLE_MS = 30_000;

export class ViewerRoster<V extends RosterEntry> {
  readonly maxViewers: number;
  private readonly bySession = new Map<string, V>();
  private readonly clock: Clock;
  private readonly sweep: unknown;

  constructor(opts: RosterOptions<V>) {
    this.clock = opts.clock;
    this.maxViewers = opts.maxViewers ?? DEFAULT_MAX_VIEWERS;
    const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.sweep = this.clock.setInterval(() => {
      const at = this.clock.now();
      for (const v of [...this.bySession.values()]) if (at - v.lastSignAt > idleMs) opts.onIdle(v);
    }, Math.min(5000, idleMs));
  }

  get size(): number {
    return this.bySession.size;
  }

  values(): IterableIterator<V> {
    return this.bySession.values();
  }

  has(v: V): boolean {
    return this.bySession.get(v.sessionId) === v;
  }

  /**
   * The viewer a message from `from` on `sessionId` is for: undefined when there is none, or
   * when the session belongs to another app (its messages are not this sender's to make).
   */
  of(sessionId: string, from: string): V | undefined {
    const v = this.bySession.get(sessionId);
    return v && v.appId === from ? v : undefined;
  }

  /** Whether `sessionId` is held by an app other than `from`. */
  foreign(sessionId: string, from: string): boolean {
    const v = this.bySession.get(sessionId);
    return v !== undefined && v.appId !== from;
  }

  /** The session's viewer, made with `create` on its first offer (then checked by `refuse`). */
  join(sessionId: string, create: () => V): V {
    let v = this.bySession.get(sessionId);
    if (!v) {
      v = create();
      this.bySession.set(sessionId, v);
    }
    return v;
  }

  /**
   * For a viewer not yet connected: why it is turned away, or undefined. A refused viewer
   * leaves the roster.
   */
  refuse(v: V, iceRestart: boolean): Refusal | undefined {
    const why: Refusal | undefined = iceRestart ? 'SESSION_UNKNOWN' : this.bySession.size > this.maxViewers ? 'DEVICE_BUSY' : undefined;
    if (why) this.leave(v);
    return why;
  }

  /** A sign of life from `v`. */
  touch(v: V): void {
    v.lastSignAt = this.clock.now();
  }

  /** Takes `v` out; false when it was not in. */
  leave(v: V): boolean {
    if (!this.has(v)) return false;
    this.bySession.delete(v.sessionId);
    return true;
  }

  /** Stops the sweep. */
  close(): void {
    this.clock.clearInterval(this.sweep);
  }
}
