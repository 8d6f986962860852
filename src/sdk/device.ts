/**
 * The device side of the SDK: `serve()` keeps a device online (retained presence, `offline` as
 * its will) and answers every app that offers: one peer connection per session, several viewers
 * at once, each with the device's media and the `p2pd` data channel (ping → pong, echo, frame
 * timestamps: deviceChannel.ts). A repeated offer gets the answer already given (negotiator.ts's
 * Answerer); an ICE-restart offer for a session this device does not know (it restarted) gets
 * `error` SESSION_UNKNOWN, so the app fails fast and can open a new session. Keepalives report
 * each viewer's path, setup time, ICE RTT and the device's NAT type (telemetry.ts), detected once
 * at start (natDetect.ts).
 * Platform-neutral; media comes in as a DeviceMedia.
 */
import { realClock, type Clock } from './clock.ts';
import { DeviceChannel, type FrameSource } from './deviceChannel.ts';
import { Emitter } from './emitter.ts';
import { SdkError, asSdkError, badOptions } from './errors.ts';
import { mqttUrlFor, normalizeServer, requestJson, signalingServers, type IceServerInit, type SessionInfo } from './http.ts';
import type {
  CandidateInit, PathKind, PeerConnectionState, RtcChannel, RtcPeer, RtcPlatform,
} from './rtc.ts';
import { DEFAULT_PUNCH_TTL, HolePuncher, mappingOf } from './holePunch.ts';
import { withoutTurn } from './icePolicy.ts';
import { Answerer, candidatePayload } from './negotiator.ts';
import { NoticedSessions, noticeIceServers } from './noticedSessions.ts';
import { SignalingClient, type SignalMessage } from './signaling.ts';
import { selectedPair } from './stats.ts';
import { readTokenClaims } from './token.ts';
import { KeepaliveTelemetry } from './telemetry.ts';
import { ViewerRoster, type Refusal } from './viewerRoster.ts';
import type { NatDetector } from './natDetect.ts';

/** What a device streams: its codec and frames (deviceChannel.ts), and the tracks it adds to each viewer. */
export interface DeviceMedia extends FrameSource {
  /** Adds one viewer's outgoing tracks to a peer whose remote offer is applied; returns the detach. */
  attach(peer: RtcPeer): () => void;
}

export interface ServeOptions {
  readonly server: string;
  /** A device token (role device). */
  readonly token: string;
  /** The device id; must be the token's subject (default: the subject). */
  readonly id?: string;
  readonly platform: RtcPlatform;
  /** No media: data channel only. */
  readonly media?: DeviceMedia;
  readonly mqttUrl?: string;
  readonly signaling?: SignalingClient;
  /** A fresh token for the same device when the current one nears expiry (the broker closes an expired login). */
  readonly tokenProvider?: () => Promise<string>;
  /** Viewers at once (default 10, as the service's --max-viewers); more get `error` DEVICE_BUSY. */
  readonly maxViewers?: number;
  readonly keepaliveMs?: number;
  /** A viewer with no sign of life (data channel, keepalive, connected path) this long is closed (default 30 s). */
  readonly idleMs?: number;
  /** IP TTL of the hole-punching datagram toward each viewer (holePunch.ts; default 2, 0: off). */
  readonly punchTtl?: number;
  /** This device's NAT type, reported in keepalives; no detection then. */
  readonly natType?: string;
  /** Finds the NAT type at start (natDetect.ts); node.ts gives its own by default; `false`: none. */
  readonly natDetector?: NatDetector | false;
}

export interface ViewerInfo {
  readonly sessionId: string;
  readonly appId: string;
  readonly state: PeerConnectionState;
  readonly path: PathKind | undefined;
  /** Offer received → path connected. */
  readonly setupMs: number | undefined;
}

export type DeviceEvents = {
  /** A viewer's path is up (again after an ICE restart too), or moved between relay and direct. */
  viewer: [ViewerInfo];
  'viewer-closed': [ViewerInfo & { reason: string }];
  signaling: ['up' | 'down'];
  /** This device's NAT type, once its own detection has told (natDetect.ts). */
  nat: [string];
  warning: [SdkError];
  close: [];
};

/** Codes a device sends in `error` messages. */
export const DEVICE_ERROR_CODES = ['SESSION_UNKNOWN', 'DEVICE_BUSY', 'NEGOTIATION_FAILED'] as const;

interface Viewer {
  readonly sessionId: string;
  readonly appId: string;
  readonly createdAt: number;
  lastSignAt: number;
  pc: RtcPeer | undefined;
  dc: RtcChannel | undefined;
  detach: (() => void) | undefined;
  /** Its end of the data channel protocol (deviceChannel.ts). */
  channel: DeviceChannel | undefined;
  /** Its offers answered, and the candidates held meanwhile (negotiator.ts). */
  readonly answerer: Answerer;
  /** Orders this viewer's first packets (holePunch.ts); absent where the stack cannot punch. */
  puncher: HolePuncher | undefined;
  chain: Promise<void>;
  path: PathKind | undefined;
  setupMs: number | undefined;
  closed: boolean;
  readonly telemetry: KeepaliveTelemetry;
}

export class DeviceServer extends Emitter<DeviceEvents> {
  readonly id: string;
  private readonly opts: ServeOptions;
  private readonly server: string;
  private readonly signaling: SignalingClient;
  private readonly ownsSignaling: boolean;
  private readonly clock: Clock;
  /** Who is a viewer: admission, the sender check, the idle sweep (viewerRoster.ts). */
  private readonly roster: ViewerRoster<Viewer>;
  /** ICE servers of sessions the service announced, for their offers (noticedSessions.ts). */
  private readonly noticed = new NoticedSessions();
  private readonly cleanups: Array<() => void> = [];
  private closed = false;
  private natType: string | undefined;
  private natDetecting = false;

  /** Use `serve()`. */
  constructor(args: { opts: ServeOptions; server: string; id: string; signaling: SignalingClient; ownsSignaling: boolean; clock?: Clock }) {
    super();
    this.opts = args.opts;
    this.clock = args.clock ?? realClock;
    this.roster = new ViewerRoster<Viewer>({
      clock: this.clock, maxViewers: this.opts.maxViewers, idleMs: this.opts.idleMs,
      onIdle: (v) => this.closeViewer(v, 'idle', true),
    });
    this.server = args.server;
    this.id = args.id;
    this.signaling = args.signaling;
    this.ownsSignaling = args.ownsSignaling;
    this.cleanups.push(
      this.signaling.on('message', (m) => this.onSignal(m)),
      this.signaling.on('up', ({ reconnect }) => { if (reconnect) this.emit('signaling', 'up'); }),
      this.signaling.on('down', () => this.emit('signaling', 'down')),
      this.signaling.on('error', (err) => this.emit('warning', err)),
    );
    const keepalive = this.clock.setInterval(() => this.keepalives(), this.opts.keepaliveMs ?? 10_000);
    this.cleanups.push(() => this.clock.clearInterval(keepalive), () => this.roster.close());
    this.natType = this.opts.natType;
    if (this.natType === undefined && this.opts.natDetector) void this.detectNatAtStart();
    // A camera's first viewer after boot would otherwise wait for the stack's one-time work.
    void this.opts.platform.warmUp?.();
  }

  /** Detection from the ICE servers the service gives this device, before any viewer comes. */
  private async detectNatAtStart(): Promise<void> {
    try {
      const r = await requestJson<{ iceServers: IceServerInit[] }>('GET', `${this.server}/v1/ice-servers`, { token: this.opts.token, timeoutMs: 5000 });
      this.detectNat(r.iceServers);
    } catch { /* the first viewer's session gives the ICE servers again */ }
  }

  private detectNat(iceServers: readonly IceServerInit[]): void {
    if (this.natType !== undefined || this.natDetecting || !this.opts.natDetector) return;
    this.natDetecting = true;
    void this.opts.natDetector.detect(iceServers).then((t) => {
      this.natDetecting = false;
      if (this.closed) return;
      // `unknown` is reported too, but a later viewer's session may try again.
      if (t !== 'unknown') {
        this.natType = t;
        this.emit('nat', t);
      }
      for (const v of this.roster.values()) {
        if (v.telemetry.setNatType(t) && v.pc?.connectionState === 'connected') this.keepalive(v);
      }
    });
  }

  viewers(): ViewerInfo[] {
    return [...this.roster.values()].map((v) => this.info(v));
  }

  private info(v: Viewer): ViewerInfo {
    return { sessionId: v.sessionId, appId: v.appId, state: v.pc?.connectionState ?? 'new', path: v.path, setupMs: v.setupMs };
  }

  // ---- signaling ---------------------------------------------------------------------------

  private onSignal(m: SignalMessage): void {
    if (this.closed || m.sessionId === '') return;
    if (m.from === 'server') {
      if (m.type === 'session') {
        // A session just opened to this device: its ICE servers, before the app's offer.
        const ice = noticeIceServers(m.payload);
        if (ice) {
          this.noticed.put(m.sessionId, ice, this.clock.now());
          this.opts.platform.prepare?.(ice);
        }
      } else if (m.type === 'error') {
        const code = typeof m.payload.code === 'string' ? m.payload.code : 'UNKNOWN';
        // SESSION_NOT_FOUND for our keepalives after a service restart: the app re-creates it.
        if (code !== 'SESSION_NOT_FOUND') this.emit('warning', new SdkError('SESSION_FAILED', `the service refused a message: ${String(m.payload.message ?? code)}`, { serverCode: code }));
      }
      return;
    }
    if (this.roster.foreign(m.sessionId, m.from)) return;
    const v = this.roster.of(m.sessionId, m.from);
    switch (m.type) {
      case 'offer': {
        const viewer = v ?? this.roster.join(m.sessionId, () => this.newViewer(m.sessionId, m.from));
        this.roster.touch(viewer);
        viewer.chain = viewer.chain.then(() => this.onOffer(viewer, m)).catch((err: unknown) => {
          this.emit('warning', asSdkError(err));
        });
        return;
      }
      case 'candidate': {
        if (!v) return;
        const c = m.payload as unknown as CandidateInit;
        if (typeof c.candidate !== 'string') return;
        v.answerer.remoteCandidate(c);
        return;
      }
      case 'keepalive':
        if (v) this.roster.touch(v);
        return;
      case 'bye':
        if (v) this.closeViewer(v, 'bye', false);
        return;
      default:
        return;
    }
  }

  private newViewer(sessionId: string, appId: string): Viewer {
    const answerer = new Answerer({
      // The answer tells the device's NAT type when it is known (docs/signaling.md "Messages").
      sendAnswer: (payload, replyTo) => this.signaling.send(appId, 'answer', sessionId, this.natType === undefined ? payload : { ...payload, natType: this.natType }, replyTo === undefined ? {} : { replyTo }).then(() => undefined),
      sendCandidate: (c) => this.sendCandidate(v, c),
      addRemote: (c) => this.addRemoteCandidate(v, c),
      warn: (err) => this.emit('warning', err),
    });
    const v: Viewer = {
      sessionId, appId, createdAt: this.clock.now(), lastSignAt: this.clock.now(), pc: undefined, dc: undefined, detach: undefined, channel: undefined,
      answerer, puncher: undefined,
      chain: Promise.resolve(), path: undefined, setupMs: undefined, closed: false,
      telemetry: new KeepaliveTelemetry({ natType: this.natType }),
    };
    return v;
  }

  private async sendError(v: Viewer, code: (typeof DEVICE_ERROR_CODES)[number] | Refusal, message: string, replyTo: string | undefined): Promise<void> {
    await this.signaling.send(v.appId, 'error', v.sessionId, { code, message }, replyTo === undefined ? {} : { replyTo }).catch(() => undefined);
  }

  private async onOffer(v: Viewer, m: SignalMessage): Promise<void> {
    if (v.closed) return;
    const sdp = typeof m.payload.sdp === 'string' ? m.payload.sdp : '';
    const again = v.answerer.answerAgain(sdp, m.msgId);
    if (again) {
      await again;
      return;
    }
    if (!v.pc) {
      const refused = this.roster.refuse(v, m.payload.iceRestart === true);
      if (refused) {
        v.closed = true;
        await this.sendError(v, refused, refused === 'DEVICE_BUSY'
          ? `device ${this.id} already serves ${this.roster.maxViewers} viewers`
          : `device ${this.id} does not know session ${v.sessionId} (it restarted); open a new session`, m.msgId);
        return;
      }
      const iceServers = await this.iceServers(v.sessionId);
      if (v.closed) return;
      this.detectNat(iceServers);
      // The app asked for a path without TURN at either end (icePolicy.ts).
      this.createPeer(v, m.payload.iceTransportPolicy === 'direct' ? withoutTurn(iceServers) : iceServers);
    }
    else if (m.payload.iceRestart === true) {
      // The session's TURN node may have moved (drained or gone: docs/turn.md "Draining").
      const iceServers = await this.iceServers(v.sessionId);
      if (v.closed) return;
      if (iceServers.length > 0) v.pc.setIceServers(m.payload.iceTransportPolicy === 'direct' ? withoutTurn(iceServers) : iceServers);
    }
    const pc = v.pc as RtcPeer;
    const failed = await v.answerer.answer(pc, sdp, m.msgId, () => {
      if (!v.detach && this.opts.media) v.detach = this.opts.media.attach(pc);
    });
    if (failed) await this.failNegotiation(v, failed.error, m.msgId);
  }

  private async iceServers(sessionId: string): Promise<readonly IceServerInit[]> {
    const noticed = this.noticed.take(sessionId, this.clock.now());
    if (noticed) return noticed;
    try {
      const s = await requestJson<SessionInfo>('GET', `${this.server}/v1/sessions/${encodeURIComponent(sessionId)}`, { token: this.opts.token, timeoutMs: 5000 });
      return s.iceServers;
    } catch (err) {
      // Without ICE servers only host candidates remain; still worth trying on a LAN.
      this.emit('warning', new SdkError('SESSION_FAILED', `no ICE servers for session ${sessionId}: ${(err as Error).message}`, { cause: err }));
      return [];
    }
  }

  private createPeer(v: Viewer, iceServers: readonly IceServerInit[]): void {
    const pc = this.opts.platform.createPeer({ iceServers, ...(this.opts.media ? { videoCodec: this.opts.media.videoCodec } : {}) });
    v.pc = pc;
    const sendLocal = (c: CandidateInit | null): void => v.answerer.localCandidate(c);
    const punchTtl = this.opts.punchTtl ?? DEFAULT_PUNCH_TTL;
    if (pc.punch && punchTtl > 0) {
      v.puncher = new HolePuncher({
        mapping: mappingOf(this.natType),
        ttl: punchTtl,
        punch: (address, port, ttl) => pc.punch?.(address, port, ttl) ?? false,
        sendLocal,
        addRemote: (c) => { if (c !== null) pc.addIceCandidate(c).catch(() => undefined); },
      });
    }
    pc.on('candidate', (c) => {
      if (v.puncher) v.puncher.local(c);
      else sendLocal(c);
    });
    pc.on('state', (s) => { void this.onPeerState(v, s); });
    pc.on('datachannel', (ch) => this.onChannel(v, ch));
  }

  /** One of the app's candidates (an empty one: its end of candidates, RFC 8838 §8.2). */
  private addRemoteCandidate(v: Viewer, c: CandidateInit): void {
    const end = c.candidate === '';
    if (v.puncher) v.puncher.remote(end ? null : c);
    else if (!end) v.pc?.addIceCandidate(c).catch(() => undefined);
  }

  private sendCandidate(v: Viewer, c: CandidateInit | null): void {
    if (v.closed) return;
    this.signaling.send(v.appId, 'candidate', v.sessionId, candidatePayload(c)).catch(() => undefined);
  }

  private async onPeerState(v: Viewer, s: PeerConnectionState): Promise<void> {
    if (v.closed) return;
    if (s === 'connected') {
      v.puncher?.connected();
      this.roster.touch(v);
      v.setupMs ??= this.clock.now() - v.createdAt;
      try {
        v.path = selectedPair(await (v.pc as RtcPeer).getStats())?.path ?? v.path;
      } catch { /* closed meanwhile */ }
      this.keepalive(v);
      this.emit('viewer', this.info(v));
    } else if (s === 'closed') {
      this.closeViewer(v, 'closed', false);
    }
  }

  // ---- data channel ------------------------------------------------------------------------

  private onChannel(v: Viewer, ch: RtcChannel): void {
    v.dc = ch;
    const protocol = new DeviceChannel({ channel: ch, deviceId: this.id, media: this.opts.media, clock: this.clock });
    v.channel = protocol;
    if (ch.readyState === 'open') protocol.hello();
    else ch.once('open', () => protocol.hello());
    ch.on('message', (data) => {
      this.roster.touch(v);
      protocol.handle(data);
    });
    ch.on('close', () => {
      protocol.stopFrames();
      // The app never closes its channel while it watches: it is gone (a closed tab says no bye).
      this.closeViewer(v, 'channel-closed', false);
    });
  }

  // ---- keepalives and ending ---------------------------------------------------------------

  private keepalive(v: Viewer): void {
    const pc = v.pc;
    if (v.closed || !pc) return;
    // The ICE pair's round trip: a device sends no pings of its own.
    void pc.getStats().then(selectedPair, () => undefined).then((pair) => {
      if (v.closed) return;
      // The path as it is now: a direct pair may have taken over from the relayed one since the
      // connection came up (docs/client.md "Relayed first, direct later").
      if (pair !== undefined && pair.path !== v.path && pc.connectionState === 'connected') {
        v.path = pair.path;
        this.emit('viewer', this.info(v));
      }
      const payload = v.telemetry.payload({ state: pc.connectionState, path: v.path, setupMs: v.setupMs, iceRttMs: pair?.rttMs });
      this.signaling.send(v.appId, 'keepalive', v.sessionId, { ...payload }, { qos: 0 }).catch(() => undefined);
    });
  }

  private keepalives(): void {
    for (const v of this.roster.values()) this.keepalive(v);
  }

  private async failNegotiation(v: Viewer, err: unknown, msgId: string | undefined): Promise<void> {
    await this.sendError(v, 'NEGOTIATION_FAILED', `device ${this.id} could not answer: ${(err as Error).message}`, msgId);
    this.closeViewer(v, 'negotiation-failed', false);
  }

  private closeViewer(v: Viewer, reason: string, sendBye: boolean): void {
    if (!this.roster.leave(v) && v.closed) return;
    const info = this.info(v);
    v.closed = true;
    v.channel?.stopFrames();
    v.detach?.();
    v.puncher?.close();
    if (sendBye) this.signaling.send(v.appId, 'bye', v.sessionId, { reason }).catch(() => undefined);
    v.pc?.close();
    this.emit('viewer-closed', { ...info, reason });
  }

  /** Says bye to every viewer, closes their peers, goes offline. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.cleanups.splice(0)) c();
    const byes = [...this.roster.values()].map((v) =>
      this.signaling.send(v.appId, 'bye', v.sessionId, { reason: 'device stopping' }).catch(() => undefined));
    await Promise.race([Promise.all(byes), new Promise<void>((r) => { this.clock.setTimeout(() => r(), 1000); })]);
    for (const v of [...this.roster.values()]) this.closeViewer(v, 'device stopping', false);
    if (this.ownsSignaling) await this.signaling.close();
    this.emit('close');
    this.removeAllListeners();
  }
}

/** Brings a device online; resolves once it is reachable (AUTH_FAILED / SIGNALING_UNAVAILABLE otherwise). */
export async function serve(opts: ServeOptions): Promise<DeviceServer> {
  if (!opts.token) throw new SdkError('AUTH_FAILED', 'no token: pass a device token (p2pd token --role device …)');
  const server = normalizeServer(opts.server);
  const claims = readTokenClaims(opts.token);
  if (claims.role !== 'device') throw new SdkError('FORBIDDEN', `serve() needs a device token; this one is for an ${claims.role}`);
  const id = opts.id ?? claims.sub;
  if (id !== claims.sub) throw badOptions(`the token is for device ${JSON.stringify(claims.sub)}, not ${JSON.stringify(id)}`);
  const signaling = opts.signaling ?? await SignalingClient.open({
    url: opts.mqttUrl ?? mqttUrlFor(server), id, role: 'device', token: opts.token,
    ...(opts.tokenProvider ? { tokenProvider: opts.tokenProvider } : {}),
  });
  if (opts.mqttUrl === undefined) {
    // Where signaling moves if its node goes (docs/signaling.md "Finding a node"), asked again after each move.
    const follow = (): void => { signalingServers(server, opts.token).then((list) => signaling.useServers(list), () => undefined); };
    follow();
    signaling.on('up', ({ reconnect }) => { if (reconnect) follow(); });
  }
  return new DeviceServer({ opts, server, id, signaling, ownsSignaling: opts.signaling === undefined });
}
