/**
 * The device's end of the `p2pd` data channel protocol (channelProtocol.ts): a hello once the
 * channel opens, a pong per ping, every echo and all application data sent back (the simulated
 * camera), and per-frame stamps while the app asks for them.
 */
import type { Clock } from './clock.ts';
import { encodeChannelMessage, readChannelMessage } from './channelProtocol.ts';
import type { RtcChannel, VideoCodec } from './rtc.ts';

export interface FrameSource {
  readonly videoCodec: VideoCodec;
  /** Each frame's RTP timestamp and the device clock (unix ms) when it left the encoder. */
  onFrame?(listener: (rtpTimestamp: number, atMs: number) => void): () => void;
}

export class DeviceChannel {
  private readonly ch: Pick<RtcChannel, 'readyState' | 'send'>;
  private readonly deviceId: string;
  private readonly media: FrameSource | undefined;
  private readonly clock: Clock;
  private framesOff: (() => void) | undefined;

  constructor(opts: { channel: Pick<RtcChannel, 'readyState' | 'send'>; deviceId: string; media: FrameSource | undefined; clock: Clock }) {
    this.ch = opts.channel;
    this.deviceId = opts.deviceId;
    this.media = opts.media;
    this.clock = opts.clock;
  }

  /** Says who this device is (and its codec). */
  hello(): void {
    try {
      this.ch.send(encodeChannelMessage({ t: 'hello', device: this.deviceId, ...(this.media ? { codec: this.media.videoCodec } : {}) }));
    } catch { /* closed */ }
  }

  /** One message from the app. */
  handle(data: string | Uint8Array): void {
    const m = readChannelMessage(data);
    try {
      if (!m) {
        this.ch.send(data); // the simulated camera echoes application data
        return;
      }
      switch (m.t) {
        case 'ping':
          this.ch.send(encodeChannelMessage({ t: 'pong', id: m.id, at: this.clock.now() }));
          return;
        case 'echo':
          this.ch.send(data);
          return;
        case 'frames':
          this.stopFrames();
          if (m.on && this.media?.onFrame) {
            this.framesOff = this.media.onFrame((rtp, at) => {
              if (this.ch.readyState === 'open') this.ch.send(encodeChannelMessage({ t: 'frame', rtp, at }));
            });
          }
          return;
        default:
          return;
      }
    } catch { /* the channel closed under us */ }
  }

  /** No more frame stamps (the app asked, or the channel or viewer is gone). */
  stopFrames(): void {
    this.framesOff?.();
    this.framesOff = undefined;
  }
}
