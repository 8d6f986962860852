/**
 * Where sessions live: memory (one node, the embedded default) or Redis / Redis Cluster.
 * One interface, one shared test suite (store.suite.ts) run against every implementation.
 */
import type { Session, SessionStatus, SessionUpdate, TraceEvent } from './model.ts';

export interface SessionPatch {
  readonly status?: SessionStatus;
  readonly turnAllocation?: string;
  readonly closeReason?: string;
  /** Unix seconds; set with every patch. */
  readonly updatedAt: number;
  /** Unix seconds of a keepalive; moves the session in the sweeper's index. */
  readonly lastSeenAt?: number;
}

export interface SessionStore {
  /** Stores a new session (fails with SESSION_EXISTS on a duplicate id). */
  create(session: Session): Promise<void>;
  get(sessionId: string): Promise<Session | undefined>;
  /**
   * Applies a patch; publishes a SessionUpdate when the status changes. A closed session stays
   * closed (patching it returns it unchanged). Returns undefined for an unknown session.
   */
  update(sessionId: string, patch: SessionPatch): Promise<Session | undefined>;
  /**
   * Closes the session if it is not closed yet. Returns true for the one caller that closed it:
   * with several nodes sweeping, each stale session is closed exactly once.
   */
  close(sessionId: string, reason: string, now: number): Promise<boolean>;
  appendTrace(sessionId: string, event: TraceEvent): Promise<void>;
  trace(sessionId: string): Promise<TraceEvent[]>;
  /** Ids of open sessions last seen before `beforeSec`, oldest first, at most `limit`. */
  findStale(beforeSec: number, limit: number): Promise<string[]>;
  /** Number of sessions not closed. */
  countOpen(): Promise<number>;
  /** Every SessionUpdate of every session (each node listens to release TURN allocations). */
  onUpdate(listener: (u: SessionUpdate) => void): () => void;
  /** True while the backing store answers. */
  readonly healthy: boolean;
  /** Stops timers and connections. */
  shutdown(): Promise<void>;
}
