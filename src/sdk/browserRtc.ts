/**
 * The SDK's RTC platform in the browser: the native RTCPeerConnection. No Node imports.
 */
import { Emitter } from './emitter.ts';
import type { IceServerInit } from './http.ts';
import type {
  CandidateInit, ChannelEvents, PeerConfig, PeerConnectionState, PeerEvents, RemoteTrack, RtcChannel, RtcPeer,
  RtcPlatform, SdpInit, StatsEntry,
} from './rtc.ts';

class BrowserChannel extends Emitter<ChannelEvents> implements RtcChannel {
  private readonly dc: RTCDataChannel;

  constructor(dc: RTCDataChannel) {
    super();
    this.dc = dc;
    dc.binaryType = 'arraybuffer';
    dc.onopen = () => this.emit('open');
    dc.onclose = () => this.emit('close');
    dc.onmessage = (e: MessageEvent) => {
      const d: unknown = e.data;
      this.emit('message', typeof d === 'string' ? d : new Uint8Array(d as ArrayBuffer));
    };
  }

  get label(): string {
    return this.dc.label;
  }

  get readyState(): RtcChannel['readyState'] {
    return this.dc.readyState;
  }

  send(data: string | Uint8Array): void {
    if (typeof data === 'string') this.dc.send(data);
    else this.dc.send(new Uint8Array(data));
  }

  close(): void {
    this.dc.close();
  }
}

const browserIceServers = (servers: readonly IceServerInit[]): RTCIceServer[] => servers.map((s) => ({
  urls: typeof s.urls === 'string' ? s.urls : [...s.urls],
  ...(s.username === undefined ? {} : { username: s.username }),
  ...(s.credential === undefined ? {} : { credential: s.credential }),
}));

class BrowserPeer extends Emitter<PeerEvents> implements RtcPeer {
  readonly raw: RTCPeerConnection;

  constructor(config: PeerConfig) {
    super();
    this.raw = new RTCPeerConnection({
      iceServers: browserIceServers(config.iceServers),
      iceTransportPolicy: config.iceTransportPolicy ?? 'all',
      bundlePolicy: 'max-bundle',
    });
    const pc = this.raw;
    pc.onicecandidate = (e) => this.emit('candidate', e.candidate ? e.candidate.toJSON() as CandidateInit : null);
    pc.onconnectionstatechange = () => this.emit('state', pc.connectionState);
    pc.oniceconnectionstatechange = () => this.emit('iceState', pc.iceConnectionState);
    // A STUN/TURN server that refused or did not answer gathering: the only trace of why a
    // relay-only peer has no candidate (the page's console, which the browser tests print).
    pc.onicecandidateerror = (e) => { console.warn(`ICE candidate error ${e.errorCode} from ${e.url}: ${e.errorText}`); };
    pc.ondatachannel = (e) => this.emit('datachannel', new BrowserChannel(e.channel));
    pc.ontrack = (e) => {
      const t: RemoteTrack = { kind: e.track.kind === 'audio' ? 'audio' : 'video', track: e.track };
      this.emit('track', t);
    };
  }

  setIceServers(servers: readonly IceServerInit[]): void {
    this.raw.setConfiguration({ ...this.raw.getConfiguration(), iceServers: browserIceServers(servers) });
  }

  get connectionState(): PeerConnectionState {
    return this.raw.connectionState;
  }

  get signalingState(): string {
    return this.raw.signalingState;
  }

  async createOffer(opts: { iceRestart?: boolean } = {}): Promise<SdpInit> {
    const d = await this.raw.createOffer(opts.iceRestart ? { iceRestart: true } : {});
    return { type: 'offer', sdp: d.sdp ?? '' };
  }

  async createAnswer(): Promise<SdpInit> {
    const d = await this.raw.createAnswer();
    return { type: 'answer', sdp: d.sdp ?? '' };
  }

  setLocalDescription(d: SdpInit): Promise<void> {
    return this.raw.setLocalDescription(d);
  }

  setRemoteDescription(d: SdpInit): Promise<void> {
    return this.raw.setRemoteDescription(d);
  }

  addIceCandidate(c: CandidateInit): Promise<void> {
    return this.raw.addIceCandidate({
      candidate: c.candidate,
      sdpMid: c.sdpMid ?? null,
      sdpMLineIndex: c.sdpMLineIndex ?? null,
      ...(c.usernameFragment ? { usernameFragment: c.usernameFragment } : {}),
    });
  }

  addVideoReceiver(): void {
    this.raw.addTransceiver('video', { direction: 'recvonly' });
  }

  createDataChannel(label: string): RtcChannel {
    return new BrowserChannel(this.raw.createDataChannel(label));
  }

  async getStats(): Promise<StatsEntry[]> {
    const report = await this.raw.getStats();
    const out: StatsEntry[] = [];
    report.forEach((s: StatsEntry) => { out.push(s); });
    return out;
  }

  close(): void {
    this.raw.close();
  }
}

export const browserPlatform: RtcPlatform = {
  name: 'browser',
  watchNetwork: (onChange) => {
    // The browser says little: back online, or a change of connection type where it tells.
    const connection = (navigator as Navigator & { connection?: EventTarget }).connection;
    const changed = (): void => onChange(['*']);
    addEventListener('online', changed);
    connection?.addEventListener('change', changed);
    return () => {
      removeEventListener('online', changed);
      connection?.removeEventListener('change', changed);
    };
  },
  createPeer: (config) => new BrowserPeer(config),
};
