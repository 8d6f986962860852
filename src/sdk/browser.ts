/**
 * The SDK in the browser: connect() on the native RTCPeerConnection, MQTT over WebSocket, NAT
 * detection from srflx candidates (natDetectBrowser.ts).
 * Bundled with esbuild (web/). Also: watchFrames() feeds decoded frames' RTP timestamps to a
 * connection for end-to-end video latency.
 */
import { connect as connectWith, type AppConnection, type ConnectOptions } from './app.ts';
import { browserPlatform } from './browserRtc.ts';
import { browserNatDetector } from './natDetectBrowser.ts';

export * from './index.ts';
export { browserPlatform, browserNatDetector };

export function connect(opts: Omit<ConnectOptions, 'platform'> & { platform?: ConnectOptions['platform'] }): Promise<AppConnection> {
  return connectWith({ ...opts, platform: opts.platform ?? browserPlatform, natDetector: opts.natDetector ?? browserNatDetector });
}

interface FrameMetadata { readonly rtpTimestamp?: number; readonly presentationTime: number; readonly receiveTime?: number }
type FrameCallbackVideo = HTMLVideoElement & {
  requestVideoFrameCallback?(cb: (now: number, meta: FrameMetadata) => void): number;
  cancelVideoFrameCallback?(handle: number): void;
};

/**
 * Reports every frame `video` presents to `conn.noteFrame` (requestVideoFrameCallback: the
 * frame's RTP timestamp and presentation time, moved to unix ms). Returns a stop function.
 */
export function watchFrames(video: HTMLVideoElement, conn: AppConnection): () => void {
  const v = video as FrameCallbackVideo;
  if (typeof v.requestVideoFrameCallback !== 'function') return () => undefined;
  let handle = 0;
  let stopped = false;
  const onFrame = (_now: number, meta: FrameMetadata): void => {
    if (stopped) return;
    if (meta.rtpTimestamp !== undefined) conn.noteFrame(meta.rtpTimestamp, performance.timeOrigin + meta.presentationTime);
    handle = v.requestVideoFrameCallback?.(onFrame) ?? 0;
  };
  handle = v.requestVideoFrameCallback(onFrame);
  return () => {
    stopped = true;
    v.cancelVideoFrameCallback?.(handle);
  };
}
