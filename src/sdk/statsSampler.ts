/**
 * What an app reads from its peer's stats (stats.ts), sample after sample: the bitrate between two
 * samples, the ICE pair's last round trip, the path (each change reported once), and when the
 * path is final (stats.ts pathSettled), the moment keepalives start carrying it (docs/client.md
 * "Keepalives and the NAT type").
 */
import type { Clock } from './clock.ts';
import type { PathKind, RtcPeer } from './rtc.ts';
import { inboundVideo, pathSettled, selectedPair, type InboundVideo, type SelectedPair } from './stats.ts';

export interface StatsSample {
  readonly pair: SelectedPair | undefined;
  readonly video: InboundVideo | undefined;
  /** Since the previous sample with video (undefined for the first). */
  readonly bitrateKbps: number | undefined;
}

export interface StatsSamplerOptions {
  readonly peer: Pick<RtcPeer, 'getStats'>;
  readonly clock: Clock;
  /** The path changed (or is known for the first time). */
  readonly onPath: (path: PathKind) => void;
  /** The path just became final. */
  readonly onFinal: () => void;
}

export class StatsSampler {
  private readonly opts: StatsSamplerOptions;
  private readonly clock: Clock;
  private lastBytes: { bytes: number; at: number } | undefined;
  private connectedAt = 0;
  private pathNow: PathKind | undefined;
  private isFinal = false;
  /** The ICE pair's last measured round trip. */
  iceRttMs: number | undefined;

  constructor(opts: StatsSamplerOptions) {
    this.opts = opts;
    this.clock = opts.clock;
  }

  get path(): PathKind | undefined {
    return this.pathNow;
  }

  /** Whether the path is final (keepalives carry it). */
  get final(): boolean {
    return this.isFinal;
  }

  /** The connection is up: a relayed path's grace (pathSettled) counts from now. */
  connected(): void {
    this.connectedAt = this.clock.now();
  }

  /** One sample; the path is followed only while `connected`. */
  async sample(connected: boolean): Promise<StatsSample> {
    const stats = await this.opts.peer.getStats();
    const pair = selectedPair(stats);
    const video = inboundVideo(stats);
    let bitrateKbps: number | undefined;
    if (video) {
      const at = this.clock.now();
      if (this.lastBytes && at > this.lastBytes.at) bitrateKbps = ((video.bytesReceived - this.lastBytes.bytes) * 8) / (at - this.lastBytes.at);
      this.lastBytes = { bytes: video.bytesReceived, at };
    }
    this.iceRttMs = pair?.rttMs ?? this.iceRttMs;
    if (connected) {
      if (pair) this.notePath(pair.path);
      this.settle(pathSettled(stats, pair, this.clock.now() - this.connectedAt));
    }
    return { pair, video, bitrateKbps };
  }

  /** The path now (best effort: stats may fail on a closing peer). */
  async refresh(): Promise<void> {
    try {
      const stats = await this.opts.peer.getStats();
      const pair = selectedPair(stats);
      if (pair) this.notePath(pair.path);
      this.settle(pathSettled(stats, pair, this.clock.now() - this.connectedAt));
    } catch { /* stats are best effort */ }
  }

  /** The connection ends: the path is what it was. True when it was known but not yet final. */
  end(): boolean {
    const unreported = !this.isFinal && this.pathNow !== undefined;
    this.isFinal = true;
    return unreported;
  }

  private notePath(path: PathKind): void {
    if (path === this.pathNow) return;
    this.pathNow = path;
    this.opts.onPath(path);
  }

  private settle(settled: boolean): void {
    if (this.isFinal || !settled) return;
    this.isFinal = true;
    this.opts.onFinal();
  }
}
