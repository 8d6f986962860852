/**
 * The app side of the SDK: `connect()` opens a session to a device and returns a live
 * connection — remote video, the `p2pd` data channel, its path (direct or relay), setup time,
 * RTT and stats — that keeps itself alive:
 *
 * - signaling: MQTT (SignalingClient) reconnects by itself; on its return the pending offer is
 *   sent again and a keepalive reports the state;
 * - offers are re-sent with the same msgId (the service de-duplicates), then with a fresh one
 *   (the device answers a repeated offer with the answer it gave): negotiator.ts;
 * - the path: when ICE fails, stays `disconnected`, or pings go unanswered, an ICE restart runs
 *   (repeatedly, within `recoveryMs`): pathSupervisor.ts;
 * - the data channel: pings, echoes and frame latency (appChannel.ts); stats (statsSampler.ts);
 * - the session: if the service forgot it (a restart of a one-node p2pd), it is created again
 *   under the same id;
 * - outcomes: keepalives carry state, path, rttMs, setupMs, natType (telemetry.ts); the NAT type
 *   is detected alongside the setup (natDetect.ts), never delaying it.
 *
 * Every failure rejects connect() or emits `error` (then `close`) with an SdkError code.
 * Platform-neutral: the RTC stack comes in as an RtcPlatform (node.ts, browser.ts).
 */
import { AppChannel } from './appChannel.ts';
import { CHANNEL_LABEL } from './channelProtocol.ts';
import { realClock, sleepOn } from './clock.ts';
import { Negotiator, type PreparedOffer } from './negotiator.ts';
import { PathSupervisor } from './pathSupervisor.ts';
import { Waiters } from './waiters.ts';
import { Emitter } from './emitter.ts';
import {
  SdkError, asSdkError, badOptions, closedError, peerGone,
} from './errors.ts';
import { mqttUrlFor, normalizeServer, requestJson, type IceServerInit, type SessionInfo } from './http.ts';
import type { CandidateInit, PathKind, PeerConnectionState, RemoteTrack, RtcChannel, RtcPeer, RtcPlatform } from './rtc.ts';
import { SignalingClient, newMsgId, type SignalMessage } from './signaling.ts';
import { withoutTurn, type IcePolicy } from './icePolicy.ts';
import { renewalDelayMs } from './turnRenewal.ts';
import { SetupTimeline } from './setupTimeline.ts';
import { SessionRecreator, readSignalError } from './signalErrors.ts';
import { PATH_SETTLE_MS } from './stats.ts';
import { StatsSampler } from './statsSampler.ts';
import { KeepaliveTelemetry, settleWithin, LAST_REPORT_WAIT_MS } from './telemetry.ts';
import type { NatDetector } from './natDetect.ts';
import { readTokenClaims } from './token.ts';

export interface ConnectOptions {
  /** The service's HTTP base URL, e.g. http://localhost:8080. */
  readonly server: string;
  /** An app token (role app) that allows `deviceId`. */
  readonly token: string;
  readonly deviceId: string;
  readonly platform: RtcPlatform;
  /** Another broker than `{server}/mqtt`. */
  readonly mqttUrl?: string;
  /** Share one MQTT connection between several connections (it is not closed with them). */
  readonly signaling?: SignalingClient;
  /** `relay`: only TURN-relayed paths; `direct`: no TURN at either end (icePolicy.ts). */
  readonly iceTransportPolicy?: IcePolicy;
  /** Receive the device's video (default true). */
  readonly video?: boolean;
  /** Whole setup, from nothing to a working path (default 20 s). */
  readonly timeoutMs?: number;
  /** How long a lost path may take to come back before ICE_FAILED (default 20 s; 0 = no recovery). */
  readonly recoveryMs?: number;
  readonly keepaliveMs?: number;
  /** Data-channel RTT probes (default every 1000 ms). */
  readonly pingMs?: number;
  readonly statsMs?: number;
  /** Pings unanswered this long mean the path is gone (default 5000 ms). */
  readonly livenessMs?: number;
  /** This side's NAT type, reported in keepalives (e.g. from `p2pd nat-type`); no detection then. */
  readonly natType?: string;
  /**
   * Finds this side's NAT type alongside the setup (natDetect.ts); node.ts and browser.ts give
   * their platform's by default; `false`: none.
   */
  readonly natDetector?: NatDetector | false;
  readonly signal?: AbortSignal;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface ConnectionStats {
  readonly at: number;
  readonly state: ConnectionState;
  readonly path: PathKind | undefined;
  readonly setupMs: number | undefined;
  /** Data-channel round trip (last ping), or the ICE pair's when there is none yet. */
  readonly rttMs: number | undefined;
  readonly iceRttMs: number | undefined;
  readonly bitrateKbps: number | undefined;
  readonly bytesReceived: number;
  readonly packetsReceived: number;
  readonly packetsLost: number;
  /** Browser: frames the decoder produced. */
  readonly framesDecoded: number | undefined;
  /** Complete frames received (Node: counted on the RTP marker bit; browser: framesDecoded). */
  readonly framesReceived: number;
  readonly frameWidth: number | undefined;
  readonly frameHeight: number | undefined;
  readonly framesPerSecond: number | undefined;
  readonly localCandidate: string | undefined;
  readonly remoteCandidate: string | undefined;
  readonly iceRestarts: number;
}

export type AppConnectionEvents = {
  state: [ConnectionState];
  path: [PathKind];
  stats: [ConnectionStats];
  track: [RemoteTrack];
  /** Application data from the device (anything that is not the SDK's own channel protocol). */
  message: [string | Uint8Array];
  /** A frame with a device timestamp (after enableFrameTimestamps): end-to-end video latency. */
  frame: [{ rtpTimestamp: number; latencyMs: number }];
  /** The signaling connection went down or came back (the P2P path does not depend on it). */
  signaling: ['up' | 'down'];
  /** Something went wrong that the connection survives (e.g. signaling refused). */
  warning: [SdkError];
  /** Fatal: `close` follows. */
  error: [SdkError];
  close: [{ reason: string; error?: SdkError }];
};


const now = (): number => Date.now();
const policyFor = (p: IcePolicy): 'relay' | 'all' => (p === 'relay' ? 'relay' : 'all');

/** A peer, its channel and its first offer, made before the session exists (see connect()). */
interface PreparedPeer {
  readonly pc: RtcPeer;
  readonly dc: RtcChannel;
  readonly offer: PreparedOffer;
}

/**
 * With the broker connection already up (an app holds one: the web viewer, a long-lived Node
 * app), the first offer goes with the session request and the service hands it to the device
 * (docs/client.md "Setup time"): the answer is a round trip sooner. The peer is made without ICE
 * servers; it gets the session's before it gathers (at setLocalDescription, after the session).
 */
async function preparePeer(opts: ConnectOptions): Promise<PreparedPeer> {
  const policy = opts.iceTransportPolicy ?? 'all';
  const pc = opts.platform.createPeer({ iceServers: [], iceTransportPolicy: policyFor(policy) });
  try {
    if (opts.video !== false) pc.addVideoReceiver();
    const dc = pc.createDataChannel(CHANNEL_LABEL);
    const offer = await pc.createOffer();
    return { pc, dc, offer: { offer, msgId: newMsgId(), sent: true } };
  } catch (err) {
    pc.close();
    throw err;
  }
}

/** The offer as the session request carries it (docs/reference.md `POST /v1/sessions`). */
function offerBody(p: PreparedPeer, opts: ConnectOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { sdp: p.offer.offer.sdp, msgId: p.offer.msgId };
  if (opts.iceTransportPolicy === 'direct') body.iceTransportPolicy = 'direct';
  return body;
}
/** The device's messages kept while the session request is out (an answer and its candidates). */
const EARLY_MESSAGES_MAX = 64;
/** The longest an ICE restart waits for the session's current ICE servers. */
const ICE_REFRESH_MS = 2000;
/** After a network change, a path whose ping is not answered within this is restarted. */
const NETWORK_PROBE_MS = 1500;
/** finalPath() looks at the candidate pairs this often. */
const FINAL_PATH_POLL_MS = 100;
/** A renewal of TURN credentials the service did not answer is tried again after this. */
const RENEWAL_RETRY_MS = 30_000;

export class AppConnection extends Emitter<AppConnectionEvents> {
  readonly sessionId: string;
  readonly deviceId: string;
  readonly appId: string;
  readonly tracks: RemoteTrack[] = [];
  state: ConnectionState = 'connecting';
  path: PathKind | undefined;
  setupMs: number | undefined;
  /** When each setup step happened (setupTimeline.ts). */
  readonly setup: SetupTimeline;
  /** Last data-channel round trip. */
  rttMs: number | undefined;
  iceRestarts = 0;
  /** Device details from its hello on the data channel. */
  deviceCodec: string | undefined;

  private readonly opts: ConnectOptions;
  private readonly server: string;
  private readonly signaling: SignalingClient;
  private readonly ownsSignaling: boolean;
  private readonly pc: RtcPeer;
  private readonly dc: RtcChannel;
  private readonly startedAt: number;
  private readonly cleanups: Array<() => void> = [];
  /** What start() and a recovery wait for (waiters.ts). */
  private readonly waiters = new Waiters(realClock);
  /** Offer, answer and the candidates held around them (negotiator.ts). */
  private readonly negotiator: Negotiator;
  /** Liveness, ICE restarts and recovery (pathSupervisor.ts). */
  private readonly supervisor: PathSupervisor;
  private closed = false;
  /** The timer of the next TURN credential renewal (turnRenewal.ts). */
  private renewal: unknown;
  /** Our end of the data channel protocol (appChannel.ts). */
  private readonly proto: AppChannel;
  /** A session the service lost, created again (signalErrors.ts). */
  private readonly recreator: SessionRecreator;
  private framesReceived = 0;
  /** iceTransportPolicy `direct`: no TURN here, none asked of the device, relayed candidates dropped. */
  private readonly direct: boolean;
  private readonly telemetry: KeepaliveTelemetry;
  /** The NAT detection in flight or done (undefined when there is none). */
  private readonly natDetection: Promise<void> | undefined;
  /** Bitrate, the path and when it is final (statsSampler.ts). */
  private readonly sampler: StatsSampler;

  /** Use `connect()`. */
  constructor(args: { opts: ConnectOptions; server: string; session: SessionInfo; appId: string; signaling: SignalingClient; ownsSignaling: boolean; startedAt: number; setup: SetupTimeline; prepared?: PreparedPeer | undefined }) {
    super();
    this.opts = args.opts;
    this.server = args.server;
    this.sessionId = args.session.sessionId;
    this.deviceId = args.opts.deviceId;
    this.appId = args.appId;
    this.signaling = args.signaling;
    this.ownsSignaling = args.ownsSignaling;
    this.startedAt = args.startedAt;
    this.setup = args.setup;

    const policy = args.opts.iceTransportPolicy ?? 'all';
    this.direct = policy === 'direct';
    const iceServers = this.direct ? withoutTurn(args.session.iceServers) : args.session.iceServers;
    // A peer made before the session (its offer went with the session request) gets its ICE
    // servers now, before it gathers.
    this.pc = args.prepared?.pc ?? args.opts.platform.createPeer({ iceServers, iceTransportPolicy: policyFor(policy) });
    if (args.prepared) this.pc.setIceServers(iceServers);
    this.negotiator = new Negotiator({
      peer: this.pc,
      remoteId: this.deviceId,
      send: (type, payload, o) => this.signaling.send(this.deviceId, type, this.sessionId, payload, o).then(() => undefined),
      newMsgId,
      direct: this.direct,
      waiters: this.waiters,
      clock: realClock,
      closed: () => this.closed,
      onOfferSent: () => this.setup.mark('offerSent'),
      onAnswer: () => this.setup.mark('answer'),
      warn: (err) => this.emit('warning', err),
    });
    this.pc.on('candidate', (c) => this.negotiator.localCandidate(c));
    this.pc.on('state', (s) => this.onPeerState(s));
    this.pc.on('iceState', (s) => { if (s === 'connected' || s === 'completed') this.setup.mark('iceConnected'); });
    this.pc.on('track', (t) => this.onTrack(t));
    if (args.prepared) this.dc = args.prepared.dc;
    else {
      if (args.opts.video !== false) this.pc.addVideoReceiver();
      this.dc = this.pc.createDataChannel(CHANNEL_LABEL);
    }
    this.dc.on('open', () => { this.setup.mark('channelOpen'); this.waiters.poke(); });
    this.proto = new AppChannel({
      channel: this.dc,
      clock: realClock,
      onRtt: (rtt) => {
        this.rttMs = rtt;
        this.supervisor.pong();
        if (this.telemetry.notePing(rtt) && this.state === 'connected') this.sendKeepalive();
      },
      onFrame: (f) => this.emit('frame', f),
      onHello: (m) => { this.deviceCodec = m.codec; },
      onData: (d) => this.emit('message', d),
    });
    this.dc.on('message', (d) => this.proto.handle(d));
    this.recreator = new SessionRecreator({
      clock: realClock,
      create: () => requestJson('POST', `${this.server}/v1/sessions`, {
        token: this.opts.token, body: { deviceId: this.deviceId, sessionId: this.sessionId }, timeoutMs: 5000,
      }),
      onCreated: () => this.sendKeepalive(),
      warn: (err) => this.emit('warning', err),
    });
    this.sampler = new StatsSampler({
      peer: this.pc,
      clock: realClock,
      onPath: (p) => {
        this.path = p;
        this.emit('path', p);
      },
      // Once the path is final, the next keepalive (this one, when it just became so) carries it.
      onFinal: () => { if (this.state === 'connected') this.sendKeepalive(); },
    });
    this.supervisor = new PathSupervisor({
      clock: realClock,
      waiters: this.waiters,
      peer: this.pc,
      channelOpen: () => this.dc.readyState === 'open',
      connected: () => this.state === 'connected',
      connecting: () => this.state === 'connecting',
      closed: () => this.closed,
      restart: async (deadline) => {
        this.iceRestarts++;
        await this.refreshIceServers(deadline);
        return this.negotiator.negotiate(true, deadline);
      },
      probe: (ms) => this.ping(ms),
      recoveryMs: args.opts.recoveryMs ?? 20_000,
      setupTimeoutMs: args.opts.timeoutMs ?? 20_000,
      onLost: () => {
        this.setState('reconnecting');
        this.sendKeepalive('disconnected');
      },
      onRestored: async () => {
        this.proto.forgetPings();
        await this.sampler.refresh();
        this.setState('connected');
        this.sendKeepalive();
      },
      fail: (err, reason) => this.fail(err, reason),
    });

    this.cleanups.push(
      this.signaling.on('message', (m) => this.onSignal(m)),
      this.signaling.on('up', ({ reconnect }) => { if (reconnect) this.onSignalingBack(); }),
      this.signaling.on('down', () => this.emit('signaling', 'down')),
      this.signaling.on('error', (err) => this.emit('warning', err)),
    );
    this.telemetry = new KeepaliveTelemetry({ natType: args.opts.natType });
    const detector = args.opts.natType === undefined ? args.opts.natDetector : undefined;
    this.natDetection = detector ? detector.detect(args.session.iceServers).then((t) => {
      if (this.telemetry.setNatType(t) && this.state === 'connected') this.sendKeepalive();
    }) : undefined;
    // The host moved to another network: a path from a vanished address is restarted as soon as
    // a ping says so, not after `livenessMs` (docs/client.md "Network change").
    const unwatch = args.opts.platform.watchNetwork?.((removed) => { void this.onNetworkChange(removed); });
    if (unwatch) this.cleanups.push(unwatch);
    this.scheduleRenewal(args.session.iceServers);
    this.cleanups.push(() => { if (this.renewal !== undefined) realClock.clearTimeout(this.renewal); });
    if (args.opts.signal) {
      const onAbort = (): void => { void this.close('aborted'); };
      args.opts.signal.addEventListener('abort', onAbort, { once: true });
      this.cleanups.push(() => args.opts.signal?.removeEventListener('abort', onAbort));
    }
  }

  /** This side's NAT type once known (given, or found by natDetect.ts). */
  get natType(): string | undefined {
    return this.telemetry.knownNatType;
  }

  /** The data channel (SDK messages are filtered out of `message` events). */
  get channel(): RtcChannel {
    return this.dc;
  }

  /** The platform's peer connection. */
  get peer(): RtcPeer {
    return this.pc;
  }

  // ---- setup ---------------------------------------------------------------------------

  /**
   * Offer, answer, connectivity; rejects with an SdkError. Called once by connect(), with the
   * offer made before the session (when there is one) and the device's messages that came before
   * this connection existed (the answer to that offer may have).
   */
  async start(deadline: number, prepared?: PreparedOffer, early: readonly SignalMessage[] = []): Promise<void> {
    const negotiated = this.negotiator.negotiate(false, deadline, prepared);
    for (const m of early) this.onSignal(m);
    await negotiated;
    await this.supervisor.establish(deadline);
    this.setupMs = now() - this.startedAt;
    this.supervisor.up();
    this.sampler.connected();
    await this.sampler.refresh();
    this.setState('connected');
    this.startTimers();
    this.sendKeepalive();
  }

  // ---- signaling -------------------------------------------------------------------------

  private onSignal(m: SignalMessage): void {
    if (this.closed || m.sessionId !== this.sessionId) return;
    switch (m.type) {
      case 'answer':
        void this.negotiator.answer(m);
        return;
      case 'candidate':
        this.onRemoteCandidate(m.payload as unknown as CandidateInit);
        return;
      case 'bye':
        if (m.from === this.deviceId) this.fail(peerGone('the device ended the session'), 'peer-bye');
        return;
      case 'error':
        this.onSignalError(m);
        return;
      default:
        return;
    }
  }

  private onRemoteCandidate(c: CandidateInit): void {
    if (!this.negotiator.accepts(c)) return;
    this.supervisor.remoteCandidate();
    this.setup.mark('remoteCandidate');
    void this.negotiator.remoteCandidate(c);
  }

  private onSignalError(m: SignalMessage): void {
    const verdict = readSignalError(m, this.deviceId, this.state === 'connecting');
    if (verdict.kind === 'session-lost') {
      // The service lost the session (a one-node p2pd restarted): create it again under its id.
      void this.recreator.lost();
      return;
    }
    const err = verdict.error;
    if (this.state === 'connecting') {
      this.waiters.failAll(err);
      return;
    }
    if (this.supervisor.heard(err)) return;
    if (err.code === 'PEER_GONE') this.fail(err, 'peer-gone');
    else this.emit('warning', err);
  }

  private onSignalingBack(): void {
    this.emit('signaling', 'up');
    // The offer in flight may have been lost with the connection, or forwarded while the device
    // was away: a fresh msgId gets past the service's de-duplication; the device re-answers a repeat.
    this.negotiator.resendFresh();
    this.sendKeepalive();
  }

  // ---- the path ---------------------------------------------------------------------------

  private onPeerState(s: PeerConnectionState): void {
    if (s === 'connected') this.setup.mark('connected');
    this.supervisor.peerState(s);
  }

  /**
   * Before an ICE restart: the session's ICE servers as the service gives them now, since its
   * TURN node may have moved (drained or gone: docs/turn.md "Draining"). The ones we have stay
   * when the service does not answer in time.
   */
  private async refreshIceServers(deadline: number): Promise<boolean> {
    const timeoutMs = Math.min(ICE_REFRESH_MS, deadline - now());
    if (timeoutMs <= 0) return false;
    try {
      const s = await requestJson<SessionInfo>('GET', `${this.server}/v1/sessions/${encodeURIComponent(this.sessionId)}`, { token: this.opts.token, timeoutMs });
      if (this.closed) return false;
      this.pc.setIceServers(this.direct ? withoutTurn(s.iceServers) : s.iceServers);
      if (this.opts.mqttUrl === undefined) this.signaling.useServers(s.signaling);
      this.scheduleRenewal(s.iceServers);
      return true;
    } catch {
      return false; // the servers we have, then
    }
  }

  /** The next move to fresh TURN credentials, ahead of their expiry (turnRenewal.ts). */
  private scheduleRenewal(servers: readonly IceServerInit[]): void {
    if (this.renewal !== undefined) realClock.clearTimeout(this.renewal);
    this.renewal = undefined;
    const delay = this.direct ? undefined : renewalDelayMs(servers, now());
    if (delay !== undefined) this.renewal = realClock.setTimeout(() => { void this.renew(); }, Math.min(delay, 2 ** 31 - 1));
  }

  /**
   * The TURN credentials are about to run out (docs/client.md "Long calls"): a relayed path moves
   * to fresh ones by an ICE restart (which asks for them first); otherwise they are only fetched,
   * for a later restart. Tried again in 30 s when the service does not answer.
   */
  private async renew(): Promise<void> {
    this.renewal = undefined;
    if (this.closed) return;
    if (this.state === 'connected' && this.path === 'relay') {
      await this.supervisor.recover('its TURN credentials expire');
      return;
    }
    if (!await this.refreshIceServers(now() + ICE_REFRESH_MS) && !this.closed && this.renewal === undefined) {
      this.renewal = realClock.setTimeout(() => { void this.renew(); }, RENEWAL_RETRY_MS);
    }
  }

  /**
   * An address of this host is gone (docs/client.md "Network change"). A new address breaks
   * nothing, and the host may have other interfaces coming and going (containers, VPNs): only a
   * path that no longer answers a ping within NETWORK_PROBE_MS is restarted, and signaling only
   * reconnects when its connection came from a vanished address.
   */
  private async onNetworkChange(removed: readonly string[]): Promise<void> {
    if (this.closed || removed.length === 0) return;
    this.signaling.reconnectIfFrom(removed);
    if (this.state !== 'connected') return;
    try {
      await this.ping(NETWORK_PROBE_MS);
    } catch {
      if (this.state === 'connected') void this.supervisor.recover('the network changed');
    }
  }

  /** Restarts ICE now (also done by itself when the path fails). */
  async restartIce(): Promise<void> {
    await this.supervisor.recover('restart requested');
  }

  // ---- data channel -----------------------------------------------------------------------

  /** Application data to the device (the simulated camera echoes it). */
  send(data: string | Uint8Array): void {
    if (this.closed) throw closedError();
    this.dc.send(data);
  }

  /** One data-channel round trip through the device's echo; resolves with what came back. */
  echo(data: unknown, timeoutMs = 5000): Promise<unknown> {
    if (this.closed) return Promise.reject(closedError());
    return this.proto.echo(data, timeoutMs);
  }

  /** One RTT probe: resolves with the round trip in ms. */
  ping(timeoutMs = 5000): Promise<number> {
    if (this.closed) return Promise.reject(closedError());
    return this.proto.ping(timeoutMs);
  }

  // ---- video latency ----------------------------------------------------------------------

  /** Asks the device for per-frame timestamps; `frame` events then carry the video latency. */
  enableFrameTimestamps(on = true): void {
    this.proto.frameStamps(on);
  }

  /** Browser: a decoded frame (requestVideoFrameCallback's rtpTimestamp and time, unix ms). */
  noteFrame(rtpTimestamp: number, atMs: number): void {
    this.proto.noteFrame(rtpTimestamp, atMs);
  }

  private onTrack(t: RemoteTrack): void {
    this.tracks.push(t);
    if (t.onFrame) {
      this.cleanups.push(t.onFrame((f) => {
        this.framesReceived++;
        this.noteFrame(f.rtpTimestamp, f.atMs);
      }));
    }
    this.emit('track', t);
  }

  // ---- timers: pings, stats, keepalives ----------------------------------------------------

  private startTimers(): void {
    const every = (ms: number, fn: () => void): void => {
      const t = realClock.setInterval(fn, ms);
      this.cleanups.push(() => realClock.clearInterval(t));
    };
    const livenessMs = this.opts.livenessMs ?? 5000;
    every(this.opts.pingMs ?? 1000, () => {
      if (this.state !== 'connected') return;
      this.proto.probe();
      this.supervisor.checkLiveness(livenessMs);
    });
    every(this.opts.statsMs ?? 1000, () => { void this.emitStats(); });
    every(this.opts.keepaliveMs ?? 10_000, () => this.sendKeepalive());
  }

  private keepalivePayload(state?: PeerConnectionState): Record<string, unknown> {
    return { ...this.telemetry.payload({
      state: state ?? (this.state === 'connected' ? 'connected' : this.pc.connectionState), path: this.sampler.final ? this.path : undefined, setupMs: this.setupMs, iceRttMs: this.sampler.iceRttMs,
    }) };
  }

  private sendKeepalive(state?: PeerConnectionState): void {
    if (this.closed) return;
    this.signaling.send(this.deviceId, 'keepalive', this.sessionId, this.keepalivePayload(state), { qos: 0 }).catch(() => undefined);
  }

  /** Before a bye: the NAT type (waited for briefly) and a first RTT no keepalive carried yet. */
  private async lastKeepalive(): Promise<void> {
    if (this.natDetection) await settleWithin(this.natDetection, LAST_REPORT_WAIT_MS);
    // Ending: the path is what it was (a call shorter than PATH_SETTLE_MS reports it now).
    const pathUnreported = this.sampler.end();
    if ((!this.telemetry.unreported && !pathUnreported) || !this.signaling.connected) return;
    await settleWithin(this.signaling.send(this.deviceId, 'keepalive', this.sessionId, this.keepalivePayload(), {}), LAST_REPORT_WAIT_MS);
  }

  /**
   * The path once it is final, as keepalives report it (statsSampler.ts): direct at once; relayed
   * once no pair of two non-relay candidates is still being checked — a direct pair that succeeds
   * later takes the relayed one's place — and at the latest PATH_SETTLE_MS after connecting.
   */
  async finalPath(): Promise<PathKind | undefined> {
    // The sampler's grace counts from connecting, which was no later than now: one look past it.
    const end = realClock.now() + PATH_SETTLE_MS + FINAL_PATH_POLL_MS;
    while (!this.sampler.final && !this.closed && this.state === 'connected' && realClock.now() < end) {
      await this.sampler.refresh();
      if (!this.sampler.final) await sleepOn(realClock, FINAL_PATH_POLL_MS);
    }
    return this.path;
  }

  /** A snapshot of the connection's numbers now. */
  async getStats(): Promise<ConnectionStats> {
    const { pair, video, bitrateKbps } = await this.sampler.sample(this.state === 'connected');
    return {
      at: now(),
      state: this.state,
      path: this.path,
      setupMs: this.setupMs,
      rttMs: this.rttMs ?? pair?.rttMs,
      iceRttMs: pair?.rttMs,
      bitrateKbps,
      bytesReceived: video?.bytesReceived ?? 0,
      packetsReceived: video?.packetsReceived ?? 0,
      packetsLost: video?.packetsLost ?? 0,
      framesDecoded: video?.framesDecoded,
      framesReceived: video?.framesDecoded ?? this.framesReceived,
      frameWidth: video?.frameWidth,
      frameHeight: video?.frameHeight,
      framesPerSecond: video?.framesPerSecond,
      localCandidate: pair ? `${pair.localType} ${pair.local}` : undefined,
      remoteCandidate: pair ? `${pair.remoteType} ${pair.remote}` : undefined,
      iceRestarts: this.iceRestarts,
    };
  }

  private async emitStats(): Promise<void> {
    if (this.closed) return;
    try {
      this.emit('stats', await this.getStats());
    } catch { /* the peer closed under us */ }
  }

  // ---- waiting and ending --------------------------------------------------------------------

  private setState(s: ConnectionState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private fail(err: SdkError, reason: string): void {
    if (this.closed) return;
    this.waiters.failAll(err);
    if (this.state === 'connecting') return; // connect() rejects with it
    this.emit('error', err);
    void this.close(reason, err);
  }

  /** Ends the session: bye to the device, the peer connection closed, signaling closed if ours. */
  async close(reason = 'closed', error?: SdkError): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiters.close();
    this.negotiator.close();
    this.supervisor.close();
    for (const c of this.cleanups.splice(0)) c();
    if (this.state === 'connected' || this.state === 'reconnecting') await this.lastKeepalive();
    if (this.signaling.connected) {
      await Promise.race([
        this.signaling.send(this.deviceId, 'bye', this.sessionId, { reason }).catch(() => undefined),
        sleepOn(realClock, 1000),
      ]);
    }
    this.pc.close();
    if (this.ownsSignaling) await this.signaling.close();
    const wasConnecting = this.state === 'connecting';
    this.setState('closed');
    if (!wasConnecting) this.emit('close', error ? { reason, error } : { reason });
    this.removeAllListeners();
  }
}

/**
 * Opens a session to `deviceId` and connects to it. Resolves with a connected AppConnection, or
 * rejects with an SdkError (DEVICE_OFFLINE, ICE_FAILED, TIMEOUT, AUTH_FAILED, FORBIDDEN,
 * SIGNALING_UNAVAILABLE, DEVICE_ERROR, …).
 */
export async function connect(opts: ConnectOptions): Promise<AppConnection> {
  const startedAt = now();
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = startedAt + timeoutMs;
  if (!opts.token) throw new SdkError('AUTH_FAILED', 'no token: pass an app token (p2pd token --role app …)');
  if (!opts.deviceId) throw badOptions('deviceId is required');
  const server = normalizeServer(opts.server);
  const claims = readTokenClaims(opts.token);
  if (claims.role !== 'app') throw new SdkError('FORBIDDEN', `connect() needs an app token; this one is for a ${claims.role}`);
  const remaining = (): number => Math.max(1, deadline - now());
  const setup = new SetupTimeline(startedAt, now);
  // The device's messages before the connection exists: the answer to an offer sent with the
  // session request can overtake the session's own answer (a device near the service).
  let prepared = opts.signaling?.connected === true ? await preparePeer(opts) : undefined;
  const early: SignalMessage[] = [];
  const stopEarly = prepared && opts.signaling
    ? opts.signaling.on('message', (m) => { if (m.from === opts.deviceId && early.length < EARLY_MESSAGES_MAX) early.push(m); })
    : undefined;
  let offerLeftAt = 0;
  const createSession = async (): Promise<SessionInfo> => {
    const body: Record<string, unknown> = { deviceId: opts.deviceId };
    if (prepared) body.offer = offerBody(prepared, opts);
    offerLeftAt = now();
    const s = await requestJson<SessionInfo & { offered?: boolean }>('POST', `${server}/v1/sessions`, { token: opts.token, body, timeoutMs: remaining(), signal: opts.signal });
    // A node without the signaling role, or from before offers rode on session requests, does
    // not say `offered`: the offer then goes over MQTT as it always did.
    if (prepared && s.offered !== true) prepared = { ...prepared, offer: { ...prepared.offer, sent: false } };
    return s;
  };

  // The broker connection and the session are independent: both at once (each is a few round
  // trips, docs/client.md "Setup time").
  const [opened, created] = await Promise.allSettled([
    (opts.signaling ? Promise.resolve(opts.signaling) : SignalingClient.open({
      url: opts.mqttUrl ?? mqttUrlFor(server), id: claims.sub, role: 'app', token: opts.token, connectTimeoutMs: Math.min(8000, remaining()),
    })).then((c) => { setup.mark('signaling'); return c; }),
    // Up to the whole setup budget: a node with --wake-timeout holds the answer while a sleeping
    // camera wakes (docs/operations.md "Sleeping cameras").
    createSession().then((s) => { setup.mark('session'); return s; }),
  ]);
  if (prepared?.offer.sent === true) setup.mark('offerSent', offerLeftAt);
  if (opened.status === 'rejected') {
    // No broker, no call: the session just opened is closed again rather than left to expire.
    if (created.status === 'fulfilled') {
      await requestJson('DELETE', `${server}/v1/sessions/${encodeURIComponent(created.value.sessionId)}`, { token: opts.token, timeoutMs: 2000 }).catch(() => undefined);
    }
    throw asSdkError(opened.reason);
  }
  const signaling = opened.value;
  let conn: AppConnection | undefined;
  try {
    if (created.status === 'rejected') throw created.reason;
    const session = created.value;
    // Where signaling moves if its node goes (docs/signaling.md "Finding a node").
    if (opts.mqttUrl === undefined) signaling.useServers(session.signaling);
    conn = new AppConnection({ opts, server, session, appId: claims.sub, signaling, ownsSignaling: opts.signaling === undefined, startedAt, setup, prepared });
    stopEarly?.();
    await conn.start(deadline, prepared?.offer, early.filter((m) => m.sessionId === session.sessionId));
    return conn;
  } catch (err) {
    stopEarly?.();
    const e = asSdkError(err);
    if (conn) await conn.close(e.code, e);
    else {
      prepared?.pc.close();
      if (opts.signaling === undefined) await signaling.close();
    }
    throw e;
  }
}
