/**
 * The app's end of the `p2pd` data channel protocol (channelProtocol.ts): RTT pings and their
 * pongs, echoes, the device's frame stamps matched to arrived frames (frameLatency.ts), its
 * hello; anything else is application data.
 */
import type { Clock } from './clock.ts';
import { encodeChannelMessage, readChannelMessage, type ChannelMessage } from './channelProtocol.ts';
import { SdkError, timeout } from './errors.ts';
import { FrameLatency } from './frameLatency.ts';
import type { RtcChannel } from './rtc.ts';

/** Periodic pings in flight kept for their pongs (older ones are forgotten). */
export const PINGS_KEPT = 50;

export interface AppChannelOptions {
  readonly channel: Pick<RtcChannel, 'readyState' | 'send'>;
  readonly clock: Clock;
  /** A pong came: the round trip (before the ping's own caller hears of it). */
  readonly onRtt: (rttMs: number) => void;
  readonly onFrame: (f: { rtpTimestamp: number; latencyMs: number }) => void;
  readonly onHello: (m: { device: string; codec?: string }) => void;
  /** Application data (not the SDK's). */
  readonly onData: (data: string | Uint8Array) => void;
}

export class AppChannel {
  private readonly opts: AppChannelOptions;
  private readonly clock: Clock;
  private pingSeq = 0;
  /** Pings in flight: id → clock.mono() when sent. */
  private readonly pings = new Map<number, number>();
  private readonly pingWaiters = new Map<number, (rttMs: number) => void>();
  private echoSeq = 0;
  private readonly echoes = new Map<number, (data: unknown) => void>();
  private readonly frames = new FrameLatency();

  constructor(opts: AppChannelOptions) {
    this.opts = opts;
    this.clock = opts.clock;
  }

  /** One message from the device. */
  handle(data: string | Uint8Array): void {
    const m = readChannelMessage(data);
    if (!m) {
      this.opts.onData(data);
      return;
    }
    switch (m.t) {
      case 'pong': {
        const sent = this.pings.get(m.id);
        if (sent === undefined) return;
        this.pings.delete(m.id);
        const rtt = this.clock.mono() - sent;
        this.opts.onRtt(rtt);
        this.pingWaiters.get(m.id)?.(rtt);
        this.pingWaiters.delete(m.id);
        return;
      }
      case 'echo':
        this.echoes.get(m.id)?.(m.data);
        return;
      case 'frame': {
        const latencyMs = this.frames.stamp(m.rtp, m.at);
        if (latencyMs !== undefined) this.opts.onFrame({ rtpTimestamp: m.rtp, latencyMs });
        return;
      }
      case 'hello':
        this.opts.onHello(m);
        return;
      default:
        return;
    }
  }

  /** Sends an SDK message; false when the channel is not open (or refused it). */
  send(m: ChannelMessage): boolean {
    if (this.opts.channel.readyState !== 'open') return false;
    try {
      this.opts.channel.send(encodeChannelMessage(m));
      return true;
    } catch {
      return false;
    }
  }

  /** A periodic ping: its pong reports the RTT; nobody waits for it. */
  probe(): void {
    const id = ++this.pingSeq;
    this.pings.set(id, this.clock.mono());
    if (this.pings.size > PINGS_KEPT) this.pings.delete(this.pings.keys().next().value as number);
    this.send({ t: 'ping', id, at: this.clock.now() });
  }

  /** Forgets the pings in flight (their pongs, over a path given up, no longer count). */
  forgetPings(): void {
    this.pings.clear();
  }

  /** One RTT probe: resolves with the round trip in ms. */
  ping(timeoutMs: number): Promise<number> {
    const id = ++this.pingSeq;
    this.pings.set(id, this.clock.mono());
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pingWaiters.delete(id);
        this.pings.delete(id);
        reject(timeout('the ping', timeoutMs));
      }, timeoutMs);
      this.pingWaiters.set(id, (rtt) => {
        this.clock.clearTimeout(timer);
        resolve(rtt);
      });
      if (!this.send({ t: 'ping', id, at: this.clock.now() })) {
        this.clock.clearTimeout(timer);
        this.pingWaiters.delete(id);
        this.pings.delete(id);
        reject(new SdkError('CLOSED', 'the data channel is not open'));
      }
    });
  }

  /** One round trip through the device's echo; resolves with what came back. */
  echo(data: unknown, timeoutMs: number): Promise<unknown> {
    const id = ++this.echoSeq;
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.echoes.delete(id);
        reject(timeout('the echo', timeoutMs));
      }, timeoutMs);
      this.echoes.set(id, (d) => {
        this.clock.clearTimeout(timer);
        this.echoes.delete(id);
        resolve(d);
      });
      if (!this.send({ t: 'echo', id, data })) {
        this.clock.clearTimeout(timer);
        this.echoes.delete(id);
        reject(new SdkError('CLOSED', 'the data channel is not open'));
      }
    });
  }

  /** Asks the device for per-frame stamps (or no more). */
  frameStamps(on: boolean): void {
    this.send({ t: 'frames', on });
  }

  /** A frame arrived or was decoded (unix ms): `onFrame` once its stamp is known. */
  noteFrame(rtpTimestamp: number, atMs: number): void {
    const latencyMs = this.frames.arrived(rtpTimestamp, atMs);
    if (latencyMs !== undefined) this.opts.onFrame({ rtpTimestamp, latencyMs });
  }
}
