/** Messages between the primary process and its STUN/TURN workers (node:cluster IPC). */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { ReserveRequest, ReserveResult } from '../turn/reservations.ts';
import type { RemoteRelay } from '../turn/peerPolicy.ts';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type PrimaryToWorker =
  | { readonly t: 'metrics'; readonly id: number }
  | { readonly t: 'release-session'; readonly sessionId: string }
  | { readonly t: 'stats'; readonly id: number }
  /** Answer to a worker's `turn-reserve` (the primary keeps TURN quotas and relay ports). */
  | { readonly t: 'turn-reserved'; readonly rid: number; readonly result: ReserveResult }
  /** The node's count of TURN auth failures blocked this source (src/turn/authLimiter.ts). */
  | { readonly t: 'turn-auth-block'; readonly ip: string; readonly untilSec: number }
  /** Relay ports that went live or dead on the node (all of them with `reset`): peerPolicy.ts. */
  | { readonly t: 'turn-live-ports'; readonly reset: boolean; readonly live: readonly number[]; readonly dead: readonly number[] }
  /** The cluster's other TURN nodes, whose relay ports are peers too. */
  | { readonly t: 'turn-cluster-relays'; readonly relays: readonly RemoteRelay[] };

export type WorkerToPrimary =
  | { readonly t: 'ready' }
  | { readonly t: 'fatal'; readonly code: string; readonly message: string }
  | { readonly t: 'metrics'; readonly id: number; readonly data: MetricsJson }
  | { readonly t: 'stats'; readonly id: number; readonly data: WorkerStats }
  /** A worker asks for a relay port and a quota slot for a new TURN allocation. */
  | { readonly t: 'turn-reserve'; readonly rid: number; readonly req: ReserveRequest }
  /** A worker gives back an allocation's ports and quota slot. */
  | { readonly t: 'turn-release'; readonly grant: number }
  /** A worker counted a TURN auth failure (valid nonce) from this source. */
  | { readonly t: 'turn-auth-failure'; readonly ip: string }
  /** A worker starts: it asks for the node's live relay ports and the cluster's relays. */
  | { readonly t: 'turn-sync' };

export interface WorkerStats {
  readonly allocations: number;
  readonly bps: number;
}

export function isWorkerMessage(m: unknown): m is WorkerToPrimary {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

export function isPrimaryMessage(m: unknown): m is PrimaryToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
