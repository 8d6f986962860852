/** A session: one app-to-device connection (CONTRACT.md §2, the design's Redis record). */
export type SessionStatus = 'connecting' | 'connected' | 'closed';

export interface Session {
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
  /** Seconds the record lives (`--session-ttl`). */
  readonly ttl: number;
  /** Unix seconds of the last keepalive (or signaling message); the sweeper reads it. */
  readonly lastSeenAt: number;
  /** Why it closed: `bye`, `deleted`, `timeout`, `swept`. Empty while open. */
  readonly closeReason: string;
}

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

/** Published on `session_updates:{id}` at every status change. */
export interface SessionUpdate {
  readonly sessionId: string;
  readonly status: SessionStatus;
  readonly turnNode: string;
  readonly at: number;
}
