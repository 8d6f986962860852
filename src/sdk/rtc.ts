/**
 * What the SDK needs of a WebRTC stack, so one app/device logic runs on the browser's native
 * RTCPeerConnection (browserRtc.ts) and on werift in Node (weriftRtc.ts). Deliberately small:
 * descriptions, trickled candidates, one data channel, a video receiver, W3C-shaped stats.
 */
import type { Emitter } from './emitter.ts';
import type { IceServerInit } from './http.ts';

export type PeerConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';
export type VideoCodec = 'VP8' | 'H264';
export type PathKind = 'direct' | 'relay';

export interface SdpInit {
  readonly type: 'offer' | 'answer';
  readonly sdp: string;
}

/** The fields of RTCIceCandidateInit (docs/signaling.md `candidate` payload). */
export interface CandidateInit {
  readonly candidate: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
  readonly usernameFragment?: string | null;
}

export interface PeerConfig {
  readonly iceServers: readonly IceServerInit[];
  /** `relay` forces every path through TURN. */
  readonly iceTransportPolicy?: 'all' | 'relay';
  /** The one video codec this peer sends or accepts (devices: the codec their source encodes). */
  readonly videoCodec?: VideoCodec;
}

export type ChannelEvents = {
  open: [];
  message: [data: string | Uint8Array];
  close: [];
};

export interface RtcChannel extends Pick<Emitter<ChannelEvents>, 'on' | 'once' | 'off'> {
  readonly label: string;
  readonly readyState: 'connecting' | 'open' | 'closing' | 'closed';
  send(data: string | Uint8Array): void;
  close(): void;
}

/** A decoded (browser) or received (Node) video frame: its RTP timestamp and when it arrived. */
export interface FrameArrival {
  readonly rtpTimestamp: number;
  /** Unix milliseconds (performance.timeOrigin-based in the browser). */
  readonly atMs: number;
}

export interface RemoteTrack {
  readonly kind: 'video' | 'audio';
  /** The platform's track: a DOM MediaStreamTrack in the browser, werift's in Node. */
  readonly track: unknown;
  /** Node only: every complete frame as it arrives (no decoder there). */
  onFrame?(listener: (f: FrameArrival) => void): () => void;
}

export type PeerEvents = {
  /** A local candidate to trickle; null once gathering is complete. */
  candidate: [CandidateInit | null];
  state: [PeerConnectionState];
  /** The ICE agent's state (RTCIceConnectionState): `connected` once a candidate pair works. */
  iceState: [string];
  datachannel: [RtcChannel];
  track: [RemoteTrack];
};

/** A W3C stats entry (RTCStats and its subtypes), as both stacks report them. */
export type StatsEntry = { readonly id: string; readonly type: string; readonly timestamp?: number } & Readonly<Record<string, unknown>>;

export interface RtcPeer extends Pick<Emitter<PeerEvents>, 'on' | 'once' | 'off'> {
  readonly connectionState: PeerConnectionState;
  readonly signalingState: string;
  createOffer(opts?: { iceRestart?: boolean }): Promise<SdpInit>;
  createAnswer(): Promise<SdpInit>;
  setLocalDescription(d: SdpInit): Promise<void>;
  setRemoteDescription(d: SdpInit): Promise<void>;
  addIceCandidate(c: CandidateInit): Promise<void>;
  /** A receive-only video transceiver (apps, before the offer). */
  addVideoReceiver(): void;
  createDataChannel(label: string): RtcChannel;
  getStats(): Promise<StatsEntry[]>;
  /**
   * ICE servers for the next gathering: an ICE restart gathers with them (a session moved to
   * another TURN node: docs/client.md "Recovery"). Connectivity in place is untouched.
   */
  setIceServers(servers: readonly IceServerInit[]): void;
  close(): void;
  /** The platform's own peer connection (media sources attach to it). */
  readonly raw: unknown;
  /**
   * Sends one datagram with IP TTL `ttl` from the ICE host sockets to address:port (holePunch.ts);
   * false when there is no socket yet. Only where the stack's sockets can be reached (werift).
   */
  punch?(address: string, port: number, ttl: number): boolean;
}

export interface RtcPlatform {
  readonly name: 'browser' | 'werift';
  createPeer(config: PeerConfig): RtcPeer;
  /**
   * Starts what a peer with these ICE servers will need, before it is created (werift: the
   * TURN reachability probe of turnReach.ts, remembered for the peer). Optional.
   */
  prepare?(iceServers: readonly IceServerInit[]): void;
  /**
   * The stack's one-time work, done before the first connection waits for it (werift:
   * weriftWarmUp.ts). Once per process; optional.
   */
  warmUp?(): Promise<void>;
  /**
   * Calls `onChange` with the addresses gone when this host's network changes (networkWatch.ts;
   * `['*']` where the platform cannot say which); returns the stop. Optional: without it a move
   * is noticed when pings go unanswered.
   */
  watchNetwork?(onChange: (removed: readonly string[]) => void): () => void;
}
