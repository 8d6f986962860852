/**
 * The TURN role's messages between a node's primary process and its STUN/TURN workers
 * (node:cluster IPC): the primary keeps the node's one book of relay ports and quotas
 * (reservations.ts), its count of auth failures (authLimiter.ts) and what every worker's peer
 * policy needs (live relay ports, the cluster's relays: peerPolicy.ts). server/ipc.ts adds them to
 * the node's own messages.
 */
import type { RemoteRelay } from './peerPolicy.ts';
import type { AlternateServer } from './server.ts';
import type { ReserveRequest, ReserveResult } from './reservations.ts';
import type { RelayUsage } from './usageMeter.ts';

export type TurnToWorker =
  /** Answer to a worker's `turn-reserve`. */
  | { readonly t: 'turn-reserved'; readonly rid: number; readonly result: ReserveResult }
  /** The node's count of TURN auth failures blocked this source (authLimiter.ts). */
  | { readonly t: 'turn-auth-block'; readonly ip: string; readonly untilSec: number }
  /** Relay ports (the book's slots) that went live or dead on the node (all of them with `reset`): peerPolicy.ts. */
  | { readonly t: 'turn-live-ports'; readonly reset: boolean; readonly live: readonly number[]; readonly dead: readonly number[] }
  /** The cluster's other TURN nodes, whose relay ports are peers too. */
  | { readonly t: 'turn-cluster-relays'; readonly relays: readonly RemoteRelay[] }
  /** The node drains: new Allocates go to this node (300 Try Alternate), or here again (undefined). */
  | { readonly t: 'turn-alternate'; readonly alternate: AlternateServer | undefined };

export type TurnToPrimary =
  /** A worker asks for a relay port and a quota slot for a new TURN allocation. */
  | { readonly t: 'turn-reserve'; readonly rid: number; readonly req: ReserveRequest }
  /** A worker gives back an allocation's ports and quota slot. */
  | { readonly t: 'turn-release'; readonly grant: number }
  /** A worker counted a TURN auth failure (valid nonce) from this source. */
  | { readonly t: 'turn-auth-failure'; readonly ip: string }
  /** A worker starts: it asks for the node's live relay ports and the cluster's relays. */
  | { readonly t: 'turn-sync' }
  /** What a worker's allocations relayed per session and hour since its last report (usageMeter.ts). */
  | { readonly t: 'turn-usage'; readonly batch: readonly RelayUsage[] };
