/**
 * What a peer tells the service about its connection: the keepalive payload (docs/signaling.md
 * "Messages"; the service turns it into p2p_connections_total{path}, p2p_setup_seconds,
 * p2p_latency_seconds and nat_type_total, docs/signaling.md "Flow tracking and metrics").
 * App and device keep one per connection. Pure bookkeeping with an injected clock.
 *
 * - `rttMs`: the latest data-channel ping while it is fresh, else the selected ICE pair's STUN
 *   round trip (W3C stats `currentRoundTripTime`); devices, which send no pings, report the latter;
 * - `natType`: this side's, once known (natDetect.ts), in every keepalive after that;
 * - news: the first RTT and the NAT type are worth a keepalive of their own, so a connection
 *   that lasts a second still reports them; `unreported` says what a last keepalive before bye
 *   would add.
 */
import type { PathKind, PeerConnectionState } from './rtc.ts';

export interface KeepalivePayload {
  readonly state: PeerConnectionState;
  readonly path?: PathKind;
  readonly setupMs?: number;
  readonly rttMs?: number;
  readonly natType?: string;
}

export interface KeepaliveFacts {
  readonly state: PeerConnectionState;
  readonly path?: PathKind | undefined;
  readonly setupMs?: number | undefined;
  /** The selected ICE pair's round trip (stats.ts selectedPair().rttMs). */
  readonly iceRttMs?: number | undefined;
}

export interface TelemetryOptions {
  /** A NAT type known up front (the `natType` option). */
  readonly natType?: string | undefined;
  /** A ping RTT older than this gives way to the ICE pair's (default 30 s). */
  readonly rttFreshMs?: number;
  readonly nowMs?: () => number;
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;

export class KeepaliveTelemetry {
  private natType: string | undefined;
  private ping: { ms: number; at: number } | undefined;
  private natReported = false;
  private rttReported = false;
  private readonly rttFreshMs: number;
  private readonly nowMs: () => number;

  constructor(opts: TelemetryOptions = {}) {
    this.natType = opts.natType;
    this.rttFreshMs = opts.rttFreshMs ?? 30_000;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  get knownNatType(): string | undefined {
    return this.natType;
  }

  /** Records this side's NAT type; true when no keepalive carried one yet (send one now). */
  setNatType(type: string): boolean {
    if (this.natType === undefined) this.natType = type;
    return !this.natReported;
  }

  /** Records a data-channel round trip; true while no keepalive carried an RTT (send one now). */
  notePing(rttMs: number): boolean {
    if (!Number.isFinite(rttMs) || rttMs < 0) return false;
    this.ping = { ms: rttMs, at: this.nowMs() };
    return !this.rttReported;
  }

  /** The RTT a keepalive carries now. */
  rttMs(iceRttMs?: number): number | undefined {
    if (this.ping && this.nowMs() - this.ping.at <= this.rttFreshMs) return this.ping.ms;
    if (iceRttMs !== undefined && Number.isFinite(iceRttMs) && iceRttMs >= 0) return iceRttMs;
    return this.ping?.ms;
  }

  /** Something is known that no keepalive carried yet: worth one more before a bye. */
  get unreported(): boolean {
    return (this.natType !== undefined && !this.natReported) || (this.ping !== undefined && !this.rttReported);
  }

  /** The payload of a keepalive sent now; what it carries counts as reported. */
  payload(f: KeepaliveFacts): KeepalivePayload {
    const rtt = this.rttMs(f.iceRttMs);
    const p: { -readonly [K in keyof KeepalivePayload]: KeepalivePayload[K] } = { state: f.state };
    if (f.path !== undefined) p.path = f.path;
    if (f.setupMs !== undefined) p.setupMs = Math.max(0, Math.round(f.setupMs));
    if (rtt !== undefined) {
      p.rttMs = round1(rtt);
      this.rttReported = true;
    }
    if (this.natType !== undefined) {
      p.natType = this.natType;
      this.natReported = true;
    }
    return p;
  }
}

/** How long a closing connection waits for a NAT detection in flight, and for its last keepalive. */
export const LAST_REPORT_WAIT_MS = 1000;

/** Resolves when `p` settles (either way) or after `ms`, whichever is first. */
export function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    p.then(done, done);
  });
}
