/**
 * The SDK's RTC platform in Node: werift (pure TypeScript WebRTC). Node only — the browser
 * bundle uses browserRtc.ts instead.
 */
import { createHook } from 'node:async_hooks';
import { Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import {
  RTCPeerConnection, RTCRtpCodecParameters, type MediaStreamTrack, type RTCDataChannel, type RtpPacket,
} from 'werift';
import { Emitter } from './emitter.ts';
import type {
  CandidateInit, ChannelEvents, FrameArrival, PeerConfig, PeerConnectionState, PeerEvents, RemoteTrack, RtcChannel,
  RtcPeer, RtcPlatform, SdpInit, StatsEntry, VideoCodec,
} from './rtc.ts';
import { firstStunUrl, probeIceServersCached, turnUrlsOf, type IceReach } from './turnReach.ts';
import { realClock } from './clock.ts';
import { watchAddresses } from './networkWatch.ts';
import type { IceServerInit } from './http.ts';
import { warmUp } from './weriftWarmUp.ts';

/**
 * werift's TURN client refreshes its allocation in a loop around a plain 500 s timer that close()
 * cannot cancel (werift 0.24), so every closed peer that used TURN would keep its process alive
 * for minutes. While werift gathers candidates (where that loop starts), long timers it creates
 * are unref'd: they still fire for live peers (whose sockets keep the process up anyway), but no
 * longer hold a finished process open.
 */
const LONG_TIMER_MS = 60_000;
let gathering = 0;
const unrefLongWeriftTimers = createHook({
  init(_id, type, _trigger, resource) {
    if (type !== 'Timeout') return;
    const t = resource as { _idleTimeout?: number; unref?: () => unknown };
    if ((t._idleTimeout ?? 0) < LONG_TIMER_MS) return;
    if (!new Error().stack?.includes('werift')) return;
    queueMicrotask(() => { t.unref?.(); });
  },
});

async function whileGathering<T>(fn: () => Promise<T>): Promise<T> {
  if (gathering++ === 0) unrefLongWeriftTimers.enable();
  try {
    return await fn();
  } finally {
    if (--gathering === 0) unrefLongWeriftTimers.disable();
  }
}

const FEEDBACK = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'goog-remb' }];

/** The werift codec of a video codec name (H.264: constrained baseline, packetization mode 1 — what ffmpeg's libx264 baseline sends). */
export function weriftVideoCodec(codec: VideoCodec): RTCRtpCodecParameters {
  return codec === 'VP8'
    ? new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: FEEDBACK })
    : new RTCRtpCodecParameters({
      mimeType: 'video/H264', clockRate: 90000, rtcpFeedback: FEEDBACK,
      parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    });
}

class WeriftChannel extends Emitter<ChannelEvents> implements RtcChannel {
  private readonly dc: RTCDataChannel;

  constructor(dc: RTCDataChannel) {
    super();
    this.dc = dc;
    dc.stateChanged.subscribe((s) => {
      if (s === 'open') this.emit('open');
      else if (s === 'closed') this.emit('close');
    });
    dc.onMessage.subscribe((data) => {
      this.emit('message', typeof data === 'string' ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  get label(): string {
    return this.dc.label;
  }

  get readyState(): RtcChannel['readyState'] {
    return this.dc.readyState;
  }

  send(data: string | Uint8Array): void {
    this.dc.send(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  close(): void {
    this.dc.close();
  }
}

/** A remote werift video track; frames are counted on the RTP marker bit (end of a frame, RFC 7741 / RFC 6184). */
class WeriftRemoteTrack implements RemoteTrack {
  readonly kind: 'video' | 'audio';
  readonly track: MediaStreamTrack;
  private readonly frameListeners = new Set<(f: FrameArrival) => void>();

  constructor(track: MediaStreamTrack) {
    this.track = track;
    this.kind = track.kind === 'audio' ? 'audio' : 'video';
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      if (!rtp.header.marker || this.frameListeners.size === 0) return;
      const f = { rtpTimestamp: rtp.header.timestamp, atMs: Date.now() };
      for (const l of this.frameListeners) l(f);
    });
  }

  onFrame(listener: (f: FrameArrival) => void): () => void {
    this.frameListeners.add(listener);
    return () => { this.frameListeners.delete(listener); };
  }
}

const ufragOf = (sdp: string): string | undefined => /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];

class WeriftPeer extends Emitter<PeerEvents> implements RtcPeer {
  readonly raw: RTCPeerConnection;
  /** An ICE restart is being negotiated (our offer asked for one, or the remote's ufrag changed). */
  private restartPending = false;
  private remoteUfrag: string | undefined;
  /** werift uses one TURN URL: the first that answers (turnReach.ts), probed while we negotiate. */
  private reachProbe: Promise<IceReach> | undefined;
  private reach: IceReach | undefined;
  /** Servers given after the peer was made, not yet handed to its ICE agents. */
  private servers: readonly IceServerInit[] | undefined;

  constructor(config: PeerConfig) {
    super();
    this.reachProbe = probeIceServersCached(config.iceServers);
    const video = config.videoCodec ? [weriftVideoCodec(config.videoCodec)] : [weriftVideoCodec('VP8'), weriftVideoCodec('H264')];
    this.raw = new RTCPeerConnection({
      iceServers: config.iceServers.map((s) => ({
        urls: typeof s.urls === 'string' ? s.urls : [...s.urls],
        ...(s.username === undefined ? {} : { username: s.username }),
        ...(s.credential === undefined ? {} : { credential: s.credential }),
      })),
      iceTransportPolicy: config.iceTransportPolicy ?? 'all',
      // One transport for all media: werift leaves the sockets of unbundled transports open.
      bundlePolicy: 'max-bundle',
      codecs: { video, audio: [] },
    });
    const pc = this.raw;
    pc.onIceCandidate.subscribe((c) => this.emit('candidate', c ? c.toJSON() : null));
    pc.connectionStateChange.subscribe((s) => this.emit('state', s));
    pc.iceConnectionStateChange.subscribe((s) => this.emit('iceState', s));
    pc.onDataChannel.subscribe((dc) => this.emit('datachannel', new WeriftChannel(dc)));
    pc.onTrack.subscribe((t) => this.emit('track', new WeriftRemoteTrack(t)));
  }

  /**
   * Probed again; the agents take these servers, and the probe's answer, at the next
   * setLocalDescription (useReachableTurn).
   */
  setIceServers(servers: readonly IceServerInit[]): void {
    this.servers = servers;
    this.reachProbe = probeIceServersCached(servers);
  }

  get connectionState(): PeerConnectionState {
    return this.raw.connectionState;
  }

  get signalingState(): string {
    return this.raw.signalingState;
  }

  async createOffer(opts: { iceRestart?: boolean } = {}): Promise<SdpInit> {
    if (opts.iceRestart) this.restartPending = true;
    const d = await this.raw.createOffer(opts.iceRestart ? { iceRestart: true } : undefined);
    return { type: 'offer', sdp: d.sdp };
  }

  async createAnswer(): Promise<SdpInit> {
    const d = await this.raw.createAnswer();
    return { type: 'answer', sdp: d.sdp };
  }

  async setLocalDescription(d: SdpInit): Promise<void> {
    // werift gathers here (TURN allocations included).
    await this.useReachableTurn();
    const applied = whileGathering(() => this.raw.setLocalDescription(d));
    await applied;
    this.startChecksAfterRestart();
  }

  async setRemoteDescription(d: SdpInit): Promise<void> {
    const ufrag = ufragOf(d.sdp);
    if (this.remoteUfrag !== undefined && ufrag !== undefined && ufrag !== this.remoteUfrag) this.restartPending = true;
    if (ufrag !== undefined) this.remoteUfrag = ufrag;
    await this.raw.setRemoteDescription(d);
    this.startChecksAfterRestart();
  }

  /**
   * Points every ICE agent at the TURN URL that answered, and off a STUN server that did not,
   * before it gathers (werift reads these fields then; its gathering waits for every query).
   */
  private async useReachableTurn(): Promise<void> {
    if (this.reachProbe !== undefined) {
      this.reach = await this.reachProbe;
      this.reachProbe = undefined;
    }
    const servers = this.servers;
    this.servers = undefined;
    if (servers !== undefined) {
      // What werift's parseIceServers reads at construction: the first STUN and the first TURN URL.
      const stun = firstStunUrl(servers);
      const turn = turnUrlsOf(servers)[0];
      for (const dtls of this.raw.dtlsTransports) {
        const ice = dtls.iceTransport.connection;
        ice.stunServer = stun === undefined ? undefined : [stun.host, stun.port];
        ice.turnServer = turn === undefined ? undefined : [turn.host, turn.port];
        ice.options.turnTransport = turn?.transport;
        ice.options.turnUsername = turn?.username;
        ice.options.turnPassword = turn?.credential;
      }
    }
    const r = this.reach;
    if (r === undefined) return;
    for (const dtls of this.raw.dtlsTransports) {
      const ice = dtls.iceTransport.connection;
      if (r.stunSilent) ice.stunServer = undefined;
      const t = r.turn;
      if (t === undefined) continue;
      ice.turnServer = [t.host, t.port];
      ice.options.turnTransport = t.transport;
      ice.options.turnUsername = t.username;
      ice.options.turnPassword = t.credential;
    }
  }

  /**
   * werift 0.24 restarts the ICE agent on new credentials but then skips the connectivity checks
   * because DTLS is still up (peerConnection.connect()), so the path never comes back. Once both
   * descriptions of the restart are applied, start the checks of each restarted transport.
   */
  private startChecksAfterRestart(): void {
    if (!this.restartPending || this.raw.signalingState !== 'stable') return;
    this.restartPending = false;
    for (const dtls of this.raw.dtlsTransports) {
      if (dtls.state !== 'connected') continue; // werift's own connect() handles a transport without DTLS
      const ice = dtls.iceTransport;
      if (ice.state === 'connected' || ice.state === 'checking' || ice.state === 'closed') continue;
      ice.start().catch(() => { /* reported through the connection state */ });
    }
  }

  async addIceCandidate(c: CandidateInit): Promise<void> {
    await this.raw.addIceCandidate({
      candidate: c.candidate,
      sdpMid: c.sdpMid ?? undefined,
      sdpMLineIndex: c.sdpMLineIndex ?? undefined,
      usernameFragment: c.usernameFragment ?? undefined,
    });
  }

  addVideoReceiver(): void {
    this.raw.addTransceiver('video', { direction: 'recvonly' });
  }

  createDataChannel(label: string): RtcChannel {
    return new WeriftChannel(this.raw.createDataChannel(label));
  }

  async getStats(): Promise<StatsEntry[]> {
    const report = await this.raw.getStats();
    return [...report.values()] as unknown as StatsEntry[];
  }

  punch(address: string, port: number, ttl: number): boolean {
    let sent = false;
    for (const socket of hostSockets(this.raw)) {
      try {
        // The TTL is the socket's: back to the default once this datagram has left. A check
        // werift sends in between may die too; ICE retransmits it (RFC 8445 §14.3).
        socket.setTTL(ttl);
        socket.send(PUNCH, port, address, () => { try { socket.setTTL(DEFAULT_TTL); } catch { /* closed */ } });
        sent = true;
      } catch {
        try { socket.setTTL(DEFAULT_TTL); } catch { /* not bound or closed */ }
      }
    }
    return sent;
  }

  close(): void {
    void this.raw.close().catch(() => undefined);
  }
}

/** A STUN Binding indication (RFC 8489 §6.3.2): ignored by any ICE agent it might reach. */
const PUNCH = Buffer.from('0011000021124442' + '706f6e6368706f6e6368706f', 'hex');
const DEFAULT_TTL = 64;

function isIpv4Bound(s: Socket): boolean {
  try {
    return s.address().family === 'IPv4';
  } catch {
    return false; // not bound yet
  }
}

/** werift's UDP sockets of host candidates (werift 0.24: iceTransports → connection → protocols). */
function hostSockets(pc: RTCPeerConnection): Socket[] {
  const out: Socket[] = [];
  for (const t of pc.iceTransports as unknown as { connection?: { protocols?: { type?: string; transport?: { socket?: unknown } }[] } }[]) {
    for (const p of t.connection?.protocols ?? []) {
      const socket = p.transport?.socket;
      if (p.type === 'stun' && socket instanceof Socket && isIpv4Bound(socket)) out.push(socket);
    }
  }
  return out;
}

/** This host's addresses a peer could gather from (what werift's host candidates come from). */
function hostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && !a.address.startsWith('fe80:')) out.push(a.address);
  }
  return out;
}

/** How often the Node SDK looks at its addresses (a read of the interface list: cheap). */
const NETWORK_WATCH_MS = 1000;

export const weriftPlatform: RtcPlatform = {
  name: 'werift',
  createPeer: (config) => new WeriftPeer(config),
  prepare: (iceServers) => { void probeIceServersCached(iceServers); },
  warmUp,
  watchNetwork: (onChange) => watchAddresses({ list: hostAddresses, clock: realClock, intervalMs: NETWORK_WATCH_MS, onChange: (_added, removed) => onChange(removed) }),
};
