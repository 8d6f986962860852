/** Messages between the primary process and its STUN/TURN workers (node:cluster IPC). */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { TurnToPrimary, TurnToWorker } from '../turn/ipc.ts';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type PrimaryToWorker =
  | { readonly t: 'metrics'; readonly id: number }
  | { readonly t: 'release-session'; readonly sessionId: string }
  | { readonly t: 'stats'; readonly id: number }
  /** A reloaded TLS certificate and key (PEM), checked by the primary (tlsReload.ts). */
  | { readonly t: 'tls-credentials'; readonly cert: string; readonly key: string }
  | TurnToWorker;

export type WorkerToPrimary =
  | { readonly t: 'ready' }
  | { readonly t: 'fatal'; readonly code: string; readonly message: string }
  | { readonly t: 'metrics'; readonly id: number; readonly data: MetricsJson }
  | { readonly t: 'stats'; readonly id: number; readonly data: WorkerStats }
  | TurnToPrimary;

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
