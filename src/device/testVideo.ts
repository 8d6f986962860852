/**
 * The simulated camera's video: ffmpeg's `testsrc` (a moving test pattern with a frame counter),
 * encoded live to VP8 or H.264 and sent as RTP to a UDP port on loopback, fanned out to one
 * werift track per viewer. One encoder serves every viewer; ffmpeg cannot be asked for a
 * keyframe on demand, so a new viewer first gets the current group of pictures from its last
 * keyframe (gopCache.ts) and shows video as soon as it is connected, not at the next keyframe
 * (every `keyframeSec`).
 *
 * Each frame's RTP timestamp and the moment its first packet left ffmpeg are published
 * (`onFrame`): the device sends them on the data channel so an app can measure the latency from
 * the encoder to its decoded frame.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { MediaStreamTrack, type RTCPeerConnection } from 'werift';
import { SdkError } from '../sdk/errors.ts';
import type { DeviceMedia } from '../sdk/device.ts';
import type { RtcPeer, VideoCodec } from '../sdk/rtc.ts';
import { GopCache } from './gopCache.ts';

export interface TestVideoOptions {
  readonly codec?: VideoCodec;
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  readonly bitrateKbps?: number;
  readonly keyframeSec?: number;
  /** The ffmpeg binary (default `ffmpeg` on PATH). */
  readonly ffmpeg?: string;
  /** Called with ffmpeg's stderr lines (errors only: it runs with -loglevel error). */
  readonly onLog?: (line: string) => void;
}

/** The ffmpeg command line: testsrc → encoder → RTP to 127.0.0.1:port. */
export function ffmpegArgs(o: Required<Omit<TestVideoOptions, 'ffmpeg' | 'onLog'>>, port: number): string[] {
  const gop = String(Math.max(1, Math.round(o.fps * o.keyframeSec)));
  const encoder = o.codec === 'VP8'
    ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-lag-in-frames', '0', '-error-resilient', '1',
      '-b:v', `${o.bitrateKbps}k`, '-maxrate', `${o.bitrateKbps}k`, '-bufsize', `${o.bitrateKbps}k`, '-g', gop, '-keyint_min', gop]
    : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-bf', '0',
      '-b:v', `${o.bitrateKbps}k`, '-maxrate', `${o.bitrateKbps}k`, '-bufsize', `${o.bitrateKbps}k`, '-g', gop, '-keyint_min', gop];
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-re', '-f', 'lavfi', '-i', `testsrc=size=${o.width}x${o.height}:rate=${o.fps}`,
    '-an', ...encoder,
    '-f', 'rtp', '-payload_type', o.codec === 'VP8' ? '96' : '102',
    `rtp://127.0.0.1:${port}?pkt_size=1200`,
  ];
}

/** `sh -c` script: runs ffmpeg ("$@"), stops it when stdin closes (our pipe: we ended it or died). */
const FFMPEG_WATCHDOG = 'exec 3<&0; "$@" </dev/null & f=$!; (read _ <&3; kill $f 2>/dev/null) & w=$!; '
  + 'trap \'kill $f 2>/dev/null\' TERM INT; wait $f; s=$?; kill $w 2>/dev/null; exit $s';

export class TestVideoSource implements DeviceMedia {
  readonly videoCodec: VideoCodec;
  private readonly opts: Required<Omit<TestVideoOptions, 'ffmpeg' | 'onLog'>>;
  private readonly ffmpegPath: string;
  private readonly onLog: ((line: string) => void) | undefined;
  private socket: dgram.Socket | undefined;
  private child: ChildProcess | undefined;
  /** Tracks that get the live packets. */
  private readonly tracks = new Set<MediaStreamTrack>();
  /** Viewers' tracks until their DTLS is up, when they get the group so far and then join `tracks`. */
  private readonly waiting = new Set<MediaStreamTrack>();
  private readonly frameListeners = new Set<(rtpTimestamp: number, atMs: number) => void>();
  private lastTimestamp = -1;
  private stopped = false;
  private readonly gop: GopCache;
  /** RTP packets received from ffmpeg (a liveness figure for logs and tests). */
  packets = 0;
  frames = 0;

  constructor(opts: TestVideoOptions = {}) {
    this.videoCodec = opts.codec ?? 'VP8';
    this.opts = {
      codec: this.videoCodec,
      width: opts.width ?? 640,
      height: opts.height ?? 360,
      fps: opts.fps ?? 30,
      bitrateKbps: opts.bitrateKbps ?? 600,
      keyframeSec: opts.keyframeSec ?? 1,
    };
    this.ffmpegPath = opts.ffmpeg ?? 'ffmpeg';
    this.onLog = opts.onLog;
    this.gop = new GopCache(this.videoCodec);
  }

  /** Starts ffmpeg; resolves once the first RTP packet arrived (MEDIA_UNAVAILABLE otherwise). */
  async start(timeoutMs = 10_000): Promise<void> {
    const socket = dgram.createSocket('udp4');
    this.socket = socket;
    socket.on('message', (pkt) => this.onPacket(pkt));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const port = socket.address().port;
    // ffmpeg runs under a small sh that holds a pipe from us: if this process dies (even by
    // SIGKILL) the pipe closes and sh stops ffmpeg, which would otherwise stream forever.
    const child = spawn('sh', ['-c', FFMPEG_WATCHDOG, 'sh', this.ffmpegPath, ...ffmpegArgs(this.opts, port)], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderr = (stderr + d).slice(-2000);
      for (const line of d.split('\n')) if (line.trim()) this.onLog?.(line.trim());
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new SdkError('MEDIA_UNAVAILABLE', `ffmpeg sent no video within ${timeoutMs} ms${stderr ? `: ${stderr.trim()}` : ''}`)), timeoutMs);
      const onFirst = (): void => { cleanup(); resolve(); };
      const onError = (err: NodeJS.ErrnoException): void => {
        fail(new SdkError('MEDIA_UNAVAILABLE', err.code === 'ENOENT'
          ? `ffmpeg not found (${this.ffmpegPath}); install it (Debian: apt-get install ffmpeg) or pass --no-video`
          : `ffmpeg could not start: ${err.message}`, { cause: err }));
      };
      const onExit = (code: number | null): void => fail(new SdkError('MEDIA_UNAVAILABLE', code === 127
        ? `ffmpeg not found (${this.ffmpegPath}); install it (Debian: apt-get install ffmpeg) or pass --no-video`
        : `ffmpeg exited with ${code}${stderr ? `: ${stderr.trim()}` : ''}`));
      socket.once('message', onFirst);
      child.once('error', onError);
      child.once('exit', onExit);
      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off('message', onFirst);
        child.off('error', onError);
        child.off('exit', onExit);
      };
      const fail = (err: SdkError): void => {
        cleanup();
        void this.stop();
        reject(err);
      };
    });
    child.once('exit', (code) => {
      if (!this.stopped) this.onLog?.(`ffmpeg exited unexpectedly with ${code}`);
    });
  }

  private onPacket(pkt: Buffer): void {
    if (pkt.length < 12) return;
    this.packets++;
    const ts = pkt.readUInt32BE(4);
    if (ts !== this.lastTimestamp) {
      // The first packet of a new frame: the moment it left the encoder.
      this.lastTimestamp = ts;
      this.frames++;
      const at = Date.now();
      for (const l of this.frameListeners) l(ts, at);
    }
    this.gop.push(pkt);
    // Each track parses its own copy: werift's senders rewrite the packet they are given.
    for (const t of this.tracks) t.writeRtp(pkt);
  }

  removeTrack(track: MediaStreamTrack): void {
    this.tracks.delete(track);
    this.waiting.delete(track);
    track.stop();
  }

  attach(peer: RtcPeer): () => void {
    const pc = peer.raw as RTCPeerConnection;
    const transceiver = pc.getTransceivers().find((t) => t.kind === 'video');
    if (!transceiver) return () => undefined; // the app asked for no video
    const track = new MediaStreamTrack({ kind: 'video' });
    this.waiting.add(track);
    void transceiver.sender.replaceTrack(track);
    transceiver.setDirection('sendonly');
    // Once it can send (DTLS up), the viewer gets the group so far, then the live packets: one
    // thread, so no live packet comes between. The RTP sequence stays continuous (werift adds
    // one offset per sender), so the viewer's decoder starts at the group's keyframe. No live
    // packet reaches the track before: werift would send those the moment DTLS is up, ahead of
    // the group and again within it, and Chromium, given newer packets first, then the older
    // group with their duplicates, decoded the group but dropped its frames for up to 3 s
    // (docs/lab.md "First frame").
    const off = peer.on('state', (s) => {
      if (s !== 'connected') return;
      off();
      if (!this.waiting.delete(track)) return;
      for (const pkt of this.gop.group()) track.writeRtp(Buffer.from(pkt));
      this.tracks.add(track);
    });
    return () => { off(); this.removeTrack(track); };
  }

  onFrame(listener: (rtpTimestamp: number, atMs: number) => void): () => void {
    this.frameListeners.add(listener);
    return () => { this.frameListeners.delete(listener); };
  }

  get viewers(): number {
    return this.tracks.size + this.waiting.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [...this.tracks, ...this.waiting]) t.stop();
    this.tracks.clear();
    this.waiting.clear();
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); }, 2000);
        child.once('exit', () => { clearTimeout(timer); resolve(); });
        child.stdin?.end(); // the watchdog stops ffmpeg and exits
      });
    }
    this.socket?.close();
    this.socket = undefined;
  }
}
