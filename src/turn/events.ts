/**
 * What the TURN server tells observers (as pion/turn's EventHandlers): allocations created,
 * refreshed and deleted, and requests it refused. The server emits; the metrics (server/turnMetrics.ts)
 * and anyone else subscribe, so the protocol code names no metric. Counts on the packet path are
 * not events: those are the relay's plain counters (relay.ts `RelayCounters`).
 */
import { EventEmitter } from 'node:events';
import type { Allocation } from './allocation.ts';
import type { AuthFailureReason } from './auth.ts';
import type { DeleteReason } from './manager.ts';
import type { PeerVerdict } from './peerPolicy.ts';
import type { ReserveLimit } from './reservations.ts';

/** Why a request was refused before its credentials were checked or after they failed. */
export type AuthRefusalReason = AuthFailureReason | 'rate_limited';

/** Which bound refused a request: one of the reservation book's, or a per-allocation cap (RFC 8656 §9.3, §11.2: 508). */
export type TurnLimit = ReserveLimit | 'permissions' | 'channels' | 'draining';

/** Why a CreatePermission or ChannelBind got 403 (docs/turn.md "Peer policy"). */
export type PeerRefusalReason = Exclude<PeerVerdict, 'allowed'> | 'own_port';

export interface TurnEventMap {
  /** An allocation's relay sockets are bound and it is in the manager (RFC 8656 §7.2). */
  allocationCreated: [allocation: Allocation];
  /** A Refresh with a non-zero LIFETIME (RFC 8656 §7.3); `lifetimeSec` is what the answer says. */
  allocationRefreshed: [allocation: Allocation, lifetimeSec: number];
  /** Gone, its ports and quota given back: refreshed to 0, expired, its session released, its connection closed, shutdown. */
  allocationDeleted: [allocation: Allocation, reason: DeleteReason];
  /** A request refused for its credentials (401, 438, 400) or dropped by the source's failure budget. */
  authRefused: [reason: AuthRefusalReason];
  /** A request refused by a bound (486, 508, 401 for a closed session, or 300 while the node drains). */
  limitRefused: [limit: TurnLimit];
  /** A CreatePermission or ChannelBind refused with 403 for its peer. */
  peerRefused: [reason: PeerRefusalReason];
}

export class TurnEvents extends EventEmitter<TurnEventMap> {}
