/**
 * Reading W3C WebRTC stats (https://www.w3.org/TR/webrtc-stats/) the same way for both stacks:
 * the selected candidate pair (and from it the path: relay when either end is a TURN relay
 * candidate), and the inbound video stream. Pure functions; browser-safe.
 */
import type { PathKind, StatsEntry } from './rtc.ts';

export interface SelectedPair {
  readonly path: PathKind;
  readonly localType: string;
  readonly remoteType: string;
  /** `address:port/protocol` of each end. */
  readonly local: string;
  readonly remote: string;
  /** STUN round trip of the pair, when the stack measured one. */
  readonly rttMs: number | undefined;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function describe(c: StatsEntry | undefined): string {
  if (!c) return '?';
  const addr = str(c.address) || str(c.ip);
  const port = num(c.port);
  return `${addr.includes(':') ? `[${addr}]` : addr}:${port ?? '?'}/${str(c.protocol) || 'udp'}`;
}

export function selectedPair(stats: readonly StatsEntry[]): SelectedPair | undefined {
  const byId = new Map(stats.map((s) => [s.id, s]));
  let pair: StatsEntry | undefined;
  for (const t of stats) {
    if (t.type !== 'transport') continue;
    const id = t.selectedCandidatePairId;
    if (typeof id === 'string' && byId.has(id)) {
      pair = byId.get(id);
      break;
    }
  }
  // Stacks without a transport entry: the nominated, succeeded pair.
  pair ??= stats.find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded');
  if (!pair) return undefined;
  const local = byId.get(str(pair.localCandidateId));
  const remote = byId.get(str(pair.remoteCandidateId));
  const localType = str(local?.candidateType) || 'unknown';
  const remoteType = str(remote?.candidateType) || 'unknown';
  const rtt = num(pair.currentRoundTripTime);
  return {
    path: localType === 'relay' || remoteType === 'relay' ? 'relay' : 'direct',
    localType,
    remoteType,
    local: describe(local),
    remote: describe(remote),
    rttMs: rtt === undefined ? undefined : rtt * 1000,
    bytesSent: num(pair.bytesSent) ?? 0,
    bytesReceived: num(pair.bytesReceived) ?? 0,
  };
}

export interface InboundVideo {
  readonly bytesReceived: number;
  readonly packetsReceived: number;
  readonly packetsLost: number;
  /** Browser only (Node has no decoder). */
  readonly framesDecoded: number | undefined;
  readonly frameWidth: number | undefined;
  readonly frameHeight: number | undefined;
  readonly framesPerSecond: number | undefined;
  /** Time the stats were taken (ms, the stack's clock). */
  readonly timestamp: number;
}

export function inboundVideo(stats: readonly StatsEntry[]): InboundVideo | undefined {
  const s = stats.find((e) => e.type === 'inbound-rtp' && (e.kind === 'video' || e.mediaType === 'video'));
  if (!s) return undefined;
  return {
    bytesReceived: num(s.bytesReceived) ?? 0,
    packetsReceived: num(s.packetsReceived) ?? 0,
    packetsLost: num(s.packetsLost) ?? 0,
    framesDecoded: num(s.framesDecoded),
    frameWidth: num(s.frameWidth),
    frameHeight: num(s.frameHeight),
    framesPerSecond: num(s.framesPerSecond),
    timestamp: num(s.timestamp) ?? Date.now(),
  };
}

/** Percentiles of a sample (nearest rank), for RTT and latency summaries. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** A relayed path counts as final at the latest this long after connecting. */
export const PATH_SETTLE_MS = 3000;

/**
 * Is the path one to report? A browser may nominate a relayed pair first and move to a direct
 * one a moment later, once that pair's checks succeed. Direct is final; relayed is once no pair of
 * two non-relay candidates is still being checked (`frozen`, `waiting`, `in-progress`, RFC 8445
 * §6.1.2.6), or `graceMs` after connecting.
 */
export function pathSettled(stats: readonly StatsEntry[], pair: SelectedPair | undefined, sinceConnectedMs: number, graceMs = PATH_SETTLE_MS): boolean {
  if (pair === undefined) return sinceConnectedMs >= graceMs;
  if (pair.path === 'direct' || sinceConnectedMs >= graceMs) return true;
  const byId = new Map(stats.map((s) => [s.id, s]));
  const relay = (id: unknown): boolean => str(byId.get(str(id))?.candidateType) === 'relay';
  return !stats.some((s) => s.type === 'candidate-pair' && ['frozen', 'waiting', 'in-progress'].includes(str(s.state))
    && !relay(s.localCandidateId) && !relay(s.remoteCandidateId));
}
