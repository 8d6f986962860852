/**
 * End-to-end video latency per frame: the device stamps each frame with its RTP timestamp and its
 * clock when the frame left the encoder (channelProtocol.ts `frame`); the app notes when the same
 * RTP timestamp arrived (Node) or was decoded (browser). Either may come first; the pair, once
 * both are known, is one latency. Both sides keep the last `kept` unmatched entries.
 */
export const FRAME_STAMPS_KEPT = 600;

export class FrameLatency {
  private readonly kept: number;
  private readonly stamps = new Map<number, number>();
  private readonly unmatched = new Map<number, number>();

  constructor(kept = FRAME_STAMPS_KEPT) {
    this.kept = kept;
  }

  /** The device's stamp for `rtp`: the latency when the frame is already here. */
  stamp(rtp: number, sentAt: number): number | undefined {
    this.stamps.set(rtp, sentAt);
    this.trim(this.stamps);
    const arrived = this.unmatched.get(rtp);
    if (arrived === undefined) return undefined;
    this.unmatched.delete(rtp);
    return arrived - sentAt;
  }

  /** Frame `rtp` arrived at `atMs`: the latency when its stamp is already here. */
  arrived(rtp: number, atMs: number): number | undefined {
    const sentAt = this.stamps.get(rtp);
    if (sentAt === undefined) {
      this.unmatched.set(rtp, atMs);
      this.trim(this.unmatched);
      return undefined;
    }
    return atMs - sentAt;
  }

  private trim(m: Map<number, number>): void {
    while (m.size > this.kept) m.delete(m.keys().next().value as number);
  }
}
