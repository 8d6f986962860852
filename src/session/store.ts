/**
 * Where sessions live: memory (one node, the embedded default) or Redis / Redis Cluster.
 * One interface, one shared test suite (store.suite.ts) run against every implementation.
 *
 * The store owns the record's invariants: nothing leaves `closed`; each status change appends a
 * `state` event to the trace and is published to every node (`onUpdate`) exactly once; a session
 * is closed by exactly one caller however many nodes try at once. Every failure of the backing
 * store surfaces as STORE_UNAVAILABLE (503).
 */
import { sessionsClosedTotal } from '../metrics/metrics.ts';
import { CLOSE_REASONS, type CloseReason, type Session, type SessionStatus, type SessionUpdate, type TraceEvent } from './model.ts';

export interface SessionPatch {
  readonly status?: SessionStatus;
  readonly turnAllocation?: string;
  /** Moves the session to another TURN node (its node dropped out of the cluster). */
  readonly turnNode?: string;
  readonly closeReason?: string;
  /** Unix seconds; set with every patch. */
  readonly updatedAt: number;
  /** Unix seconds of a keepalive; moves the session in the sweeper's index. */
  readonly lastSeenAt?: number;
}

export interface CloseOptions {
  /**
   * Close only if the session's lastSeenAt is before this (unix seconds): the sweeper's guard
   * against a keepalive that arrived after it listed the session as stale.
   */
  readonly ifLastSeenBefore?: number;
}

export interface CreateOptions {
  /**
   * Refuse (TOO_MANY_SESSIONS, 429) when the session's app already has this many open sessions
   * (`--max-sessions-per-app`; 0 or absent = no cap). Checked and counted atomically with the
   * creation, so nodes racing for an app's last slot cannot overshoot.
   */
  readonly maxOpenPerApp?: number;
  /**
   * Refuse (DEVICE_BUSY, 409) when the session's device already has this many open sessions
   * (`--max-viewers`: one session a viewer; 0 or absent = no cap), atomically like maxOpenPerApp.
   */
  readonly maxOpenPerDevice?: number;
}

export interface SessionStore {
  /**
   * Stores a new session (fails with SESSION_EXISTS on a duplicate id, TOO_MANY_SESSIONS past
   * `opts.maxOpenPerApp`, DEVICE_BUSY past `opts.maxOpenPerDevice`). Publishes its update.
   */
  create(session: Session, opts?: CreateOptions): Promise<void>;
  get(sessionId: string): Promise<Session | undefined>;
  /**
   * Applies a patch; publishes a SessionUpdate when the status changes. A closed session stays
   * closed (patching it returns it unchanged; use close() to close). Refreshes the record's TTL.
   * Returns undefined for an unknown session.
   */
  update(sessionId: string, patch: SessionPatch): Promise<Session | undefined>;
  /**
   * Closes the session if it is not closed yet. Returns true for the one caller that closed it:
   * with several nodes sweeping, each stale session is closed exactly once.
   */
  close(sessionId: string, reason: string, now: number, opts?: CloseOptions): Promise<boolean>;
  /**
   * Closes several sessions (the sweeper's batch); returns the ids this call closed. Same
   * exactly-once rule as close(); the Redis store runs one script per 200 sessions.
   */
  closeMany(sessionIds: readonly string[], reason: string, now: number, opts?: CloseOptions): Promise<string[]>;
  /** Appends to the session's trace (kept to the newest TRACE_MAX_EVENTS, same TTL as the record). */
  appendTrace(sessionId: string, event: TraceEvent): Promise<void>;
  /**
   * What a signaling message does to its session (docs/signaling.md "What the service tracks"):
   * appends `event` to the trace and, unless the session is closed, sets `updatedAt` and
   * `lastSeenAt` to `nowSec` and refreshes the record's TTL — appendTrace and update in one, one
   * round trip on Redis. No status change, so no SessionUpdate.
   */
  touch(sessionId: string, event: TraceEvent, nowSec: number): Promise<void>;
  /** The trace in order, oldest first; empty for an unknown session. */
  trace(sessionId: string): Promise<TraceEvent[]>;
  /**
   * Ids of open sessions last seen before `beforeSec`, at most `limit`, oldest first (exact up to
   * 64; beyond, the Redis store's sharded index merges each shard's oldest share: the very oldest
   * first, the rest nearly in order, and fewer than `limit` does not mean there are no more).
   */
  findStale(beforeSec: number, limit: number): Promise<string[]>;
  /** Number of sessions not closed (cluster-wide with Redis). */
  countOpen(): Promise<number>;
  /**
   * Open sessions of one app (cluster-wide with Redis): a session leaves the count when it is
   * closed (DELETE, bye, sweep) or its record expires.
   */
  countOpenForApp(appId: string): Promise<number>;
  /** Open sessions of one device (cluster-wide with Redis), counted as countOpenForApp counts. */
  countOpenForDevice(deviceId: string): Promise<number>;
  /** Every SessionUpdate of every session, from every node (each node listens to release TURN allocations). */
  onUpdate(listener: (u: SessionUpdate) => void): () => void;
  /** True while the backing store answers. */
  readonly healthy: boolean;
  /** Stops timers and connections. Idempotent. */
  shutdown(): Promise<void>;
}

/** Calls `listener` for each session that closes, on whichever node closed it. */
export function onSessionClosed(store: SessionStore, listener: (u: SessionUpdate) => void): () => void {
  return store.onUpdate((u) => {
    if (u.status === 'closed') listener(u);
  });
}

/** The trace event a status change appends (the same text in every store). */
export function stateEvent(from: SessionStatus | 'new', to: SessionStatus, atMs: number, reason: string): TraceEvent {
  return reason === ''
    ? { at: atMs, kind: 'state', what: `${from}→${to}` }
    : { at: atMs, kind: 'state', what: `${from}→${to}`, detail: { reason } };
}

/** Counts a close under its reason, folding unknown reasons into `error` (a small fixed label set). */
export function countClosed(reason: string): void {
  sessionsClosedTotal.inc({ reason: (CLOSE_REASONS as readonly string[]).includes(reason) ? (reason as CloseReason) : 'error' });
}
