/**
 * A session: one app-to-device connection (docs/reference.md "HTTP API", the design's Redis record).
 *
 * Lifecycle: `connecting` (created by the app) → `connected` (a peer reports a working path) →
 * `closed` (bye, DELETE, sweep or timeout). `connected` may fall back to `connecting` (an ICE
 * restart); nothing leaves `closed`. The record outlives the close until its TTL, so a closed
 * session stays readable.
 */
export type SessionStatus = 'connecting' | 'connected' | 'closed';

/** Why a session closed. Small fixed set: it is also a metric label. */
export type CloseReason = 'bye' | 'deleted' | 'timeout' | 'swept' | 'error';

export const CLOSE_REASONS: readonly CloseReason[] = ['bye', 'deleted', 'timeout', 'swept', 'error'];

// A type alias, not an interface: it stays assignable to `{ [field: string]: unknown }` (signaling
// passes sessions on as plain JSON objects).
export type Session = {
  readonly sessionId: string;
  readonly deviceId: string;
  readonly appId: string;
  readonly status: SessionStatus;
  /** `stun:host:port` of the nearest STUN server. */
  readonly stunServer: string;
  /** Id of the node whose TURN relay serves this session. */
  readonly turnNode: string;
  /** The relayed address of the session's allocation once one exists (`ip:port`), else ''. */
  readonly turnAllocation: string;
  readonly region: string;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Seconds the record lives after its last change (`--session-ttl`). */
  readonly ttl: number;
  /** Unix seconds of the last keepalive (or signaling message); the sweeper reads it. */
  readonly lastSeenAt: number;
  /** Why it closed (a {@link CloseReason}). Empty while open. */
  readonly closeReason: string;
};

/** One entry of a session's trace (`GET /v1/sessions/{id}/trace`). */
export interface TraceEvent {
  /** Unix milliseconds. */
  readonly at: number;
  /** `signal` (an MQTT message), `turn` (allocation events), `state` (status changes), `api`. */
  readonly kind: 'signal' | 'turn' | 'state' | 'api';
  /** e.g. the signaling message type, `allocate`, `released`, `connecting→connected`. */
  readonly what: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** The stores keep at most this many trace events per session (the newest). */
export const TRACE_MAX_EVENTS = 1000;

/** Published on `session_updates:{id}` at every status change (and at creation). */
export interface SessionUpdate {
  readonly sessionId: string;
  readonly status: SessionStatus;
  readonly turnNode: string;
  /** Unix milliseconds. */
  readonly at: number;
  readonly deviceId: string;
  readonly appId: string;
  /** The close reason when `status` is `closed`, else ''. */
  readonly reason: string;
}

export interface NewSessionInput {
  readonly sessionId: string;
  readonly deviceId: string;
  readonly appId: string;
  readonly stunServer: string;
  readonly turnNode: string;
  readonly region: string;
  readonly ttl: number;
  /** Unix seconds. */
  readonly now: number;
}

/** A fresh session record in `connecting`. */
export function newSession(input: NewSessionInput): Session {
  return {
    sessionId: input.sessionId,
    deviceId: input.deviceId,
    appId: input.appId,
    status: 'connecting',
    stunServer: input.stunServer,
    turnNode: input.turnNode,
    turnAllocation: '',
    region: input.region,
    createdAt: input.now,
    updatedAt: input.now,
    ttl: input.ttl,
    lastSeenAt: input.now,
    closeReason: '',
  };
}

/** Unix seconds now. */
export const nowSec = (): number => Math.floor(Date.now() / 1000);
