/**
 * What app and device say on the `p2pd` data channel. Text messages that are JSON objects with a
 * `t` field below belong to the SDK; anything else is the application's own data (the simulated
 * camera echoes it back unchanged, text and binary alike).
 *
 *   app → device  {"t":"ping","id":7,"at":1750929836097}   device → app {"t":"pong","id":7,"at":…}  (RTT)
 *   app → device  {"t":"echo","id":1,"data":…}             device → app the same message
 *   app → device  {"t":"frames","on":true}                 device → app {"t":"frame","rtp":…,"at":…}
 *                                                           per video frame: its RTP timestamp and the
 *                                                           device's clock when it left the encoder
 *   device → app  {"t":"hello","device":"cam-1","codec":"VP8"} once the channel opens
 */
export const CHANNEL_LABEL = 'p2pd';

export type ChannelMessage =
  | { readonly t: 'ping'; readonly id: number; readonly at: number }
  | { readonly t: 'pong'; readonly id: number; readonly at: number }
  | { readonly t: 'echo'; readonly id: number; readonly data: unknown }
  | { readonly t: 'frames'; readonly on: boolean }
  | { readonly t: 'frame'; readonly rtp: number; readonly at: number }
  | { readonly t: 'hello'; readonly device: string; readonly codec?: string };

const KINDS = new Set(['ping', 'pong', 'echo', 'frames', 'frame', 'hello']);

/** The SDK message a text carries, or undefined for application data. */
export function readChannelMessage(data: string | Uint8Array): ChannelMessage | undefined {
  if (typeof data !== 'string' || data.length === 0 || data[0] !== '{') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const t = (v as { t?: unknown }).t;
  return typeof t === 'string' && KINDS.has(t) ? (v as ChannelMessage) : undefined;
}

export const encodeChannelMessage = (m: ChannelMessage): string => JSON.stringify(m);
