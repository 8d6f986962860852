/**
 * Opening a session and presenting it to a caller: the one creation both doors use, `POST
 * /v1/sessions` (api/sessions.ts) and signaling's `session` request (signaling/service.ts), so
 * both follow the same rules and give the same session object (docs/client.md).
 */
import { randomUUID } from 'node:crypto';
import { allowsDevice, type ClientClaims } from '../auth/token.ts';
import { buildIceServers, stunUrl, type IceServer } from '../cluster/iceServers.ts';
import { pickStunNodes, pickTurnNode } from '../cluster/placement.ts';
import { signalingServers, type SignalingServer } from '../cluster/signalingServers.ts';
import type { ClusterView } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import { sessionsRefusedTotal } from '../metrics/metrics.ts';
import { P2pdError, deviceOffline, forbidden, noTurnNode } from '../errors.ts';
import { newSession, type Session } from './model.ts';
import type { SessionStore } from './store.ts';

export interface SessionActionsOptions {
  readonly store: SessionStore;
  readonly cluster: ClusterView;
  /** TURN REST shared secret (`--auth-secret`). */
  readonly authSecret: string;
  /** `--session-ttl`. */
  readonly sessionTtlSec: number;
  /** `--max-sessions-per-app`: open sessions per app (TOO_MANY_SESSIONS past it); 0 = no cap. */
  readonly maxSessionsPerApp?: number;
  /** `--max-viewers`: open sessions per device (DEVICE_BUSY past it); 0 = no cap. */
  readonly maxViewers?: number;
  /** Device presence from signaling: false = offline (409), undefined = unknown (allowed). */
  readonly isDeviceOnline?: ((deviceId: string) => boolean | undefined) | undefined;
  /**
   * Sleeping devices (signaling/wake.ts): waits for an offline device to come online, resolving
   * with when the wake was asked for and when it came, or rejecting with DEVICE_OFFLINE. Absent:
   * an offline device is DEVICE_OFFLINE at once.
   */
  readonly wakeDevice?: ((deviceId: string) => Promise<{ readonly requestedAt: number; readonly wokeAt: number }>) | undefined;
  readonly log?: Logger | undefined;
  readonly nowMs?: () => number;
  /**
   * Called with each session opened here, once stored (signaling announces it to its device, and
   * hands it the offer that came with the request). True when an offer will be delivered.
   */
  readonly onCreated?: ((session: Session, offer: SessionOffer | undefined) => boolean) | undefined;
}

/**
 * The app's first offer, sent with the session request (docs/client.md "Setup time"): the node
 * that opens the session hands it to the device as the app's own `offer` message, so the offer
 * does not wait for the session's answer to come back first (a round trip).
 */
export interface SessionOffer {
  readonly sdp: string;
  /** The offer's msgId, as the app would have sent it (the answer's `replyTo`). */
  readonly msgId: string;
  readonly natType?: string;
  readonly iceTransportPolicy?: 'direct';
}

/**
 * A session as answered to a caller: the record plus `iceServers` for that caller and
 * `signaling`, the nodes it may (re)connect its MQTT to, nearest first.
 */
export type SessionAnswer = Session & {
  readonly iceServers: IceServer[];
  readonly signaling: SignalingServer[];
  /** The request's offer is on its way to the device (absent: send it over MQTT). */
  readonly offered?: true;
};

export interface CreateSessionRequest {
  readonly claims: ClientClaims;
  readonly deviceId: string;
  /** The caller's IP address (places it in a region); the node's region when absent. */
  readonly ip?: string | undefined;
  /** A client-chosen id (SESSION_EXISTS when taken); a UUID otherwise. */
  readonly sessionId?: string | undefined;
  /** The app's first offer, delivered to the device once the session is stored. */
  readonly offer?: SessionOffer | undefined;
}

export interface SessionActions {
  /**
   * Opens a session: the app token must allow the device (FORBIDDEN), the device must not be
   * known offline (DEVICE_OFFLINE), the app must be under --max-sessions-per-app
   * (TOO_MANY_SESSIONS) and the device under --max-viewers (DEVICE_BUSY), a TURN node must take it (NO_TURN_NODE). The one creation
   * used by `POST /v1/sessions` and by signaling's `session` request alike.
   */
  create(req: CreateSessionRequest): Promise<SessionAnswer>;
  /** The session with ICE servers for a caller; moves it off a TURN node that left the cluster. */
  present(session: Session, callerIp: string | undefined, callerSub: string): Promise<SessionAnswer>;
}

export function sessionActions(opts: SessionActionsOptions): SessionActions {
  const { store, cluster } = opts;
  const nowMs = opts.nowMs ?? Date.now;
  const regionOf = (ip: string | undefined): string => cluster.regionOf(ip ?? '');

  async function present(session: Session, callerIp: string | undefined, callerSub: string): Promise<SessionAnswer> {
    const nodes = cluster.nodes();
    let s = session;
    const current = nodes.find((n) => n.id === s.turnNode && n.roles.includes('turn'));
    let turn = current?.draining ? undefined : current;
    if (!turn && s.status !== 'closed') {
      // Its node is gone or draining: every node picks the same successor (HRW over the same
      // live set). A peer asking now (an ICE restart, docs/client.md) relays there; with no
      // successor a draining node serves on.
      turn = pickTurnNode(nodes, s.sessionId, s.region) ?? current;
      if (turn && turn !== current) {
        s = (await store.update(s.sessionId, { turnNode: turn.id, updatedAt: Math.floor(nowMs() / 1000) })) ?? s;
        opts.log?.info({ sessionId: s.sessionId, from: session.turnNode, to: turn.id }, 'session moved to another TURN node');
      }
    }
    const stun = pickStunNodes(nodes, s.sessionId, regionOf(callerIp));
    const iceServers = buildIceServers({
      stun,
      turn: s.status === 'closed' ? undefined : turn,
      secret: opts.authSecret,
      sessionId: s.sessionId,
      sub: callerSub,
      // Minted only while open, so a closed record (kept ttl after closing) outlives them all.
      expiresAt: Math.floor(nowMs() / 1000) + s.ttl,
    });
    return { ...s, iceServers, signaling: signalingServers(nodes, callerSub, regionOf(callerIp)) };
  }

  async function create(req: CreateSessionRequest): Promise<SessionAnswer> {
    const { claims, deviceId } = req;
    if (claims.role !== 'app') throw forbidden('only app tokens open sessions');
    if (!allowsDevice(claims, deviceId)) throw forbidden(`this token does not allow device ${JSON.stringify(deviceId)}`);
    let wake: { readonly requestedAt: number; readonly wokeAt: number } | undefined;
    if (opts.isDeviceOnline?.(deviceId) === false) {
      if (opts.wakeDevice === undefined) throw deviceOffline(deviceId);
      wake = await opts.wakeDevice(deviceId);
    }
    const sessionId = req.sessionId ?? randomUUID();
    const region = regionOf(req.ip);
    const nodes = cluster.nodes();
    const turn = pickTurnNode(nodes, sessionId, region);
    if (!turn) throw noTurnNode(region);
    const nearest = pickStunNodes(nodes, sessionId, region)[0];
    const session = newSession({
      sessionId, deviceId, appId: claims.sub, region,
      stunServer: nearest ? stunUrl(nearest) : '',
      turnNode: turn.id,
      ttl: opts.sessionTtlSec,
      now: Math.floor(nowMs() / 1000),
    });
    try {
      await store.create(session, { maxOpenPerApp: opts.maxSessionsPerApp ?? 0, maxOpenPerDevice: opts.maxViewers ?? 0 });
    } catch (err) {
      if (err instanceof P2pdError && (err.code === 'TOO_MANY_SESSIONS' || err.code === 'DEVICE_BUSY')) {
        sessionsRefusedTotal.inc({ code: err.code });
        opts.log?.info({ appId: claims.sub, deviceId, maxPerApp: opts.maxSessionsPerApp, maxViewers: opts.maxViewers }, `session refused: ${err.code}`);
      }
      throw err;
    }
    opts.log?.debug({ sessionId, deviceId, appId: claims.sub, turnNode: turn.id, region }, 'session created');
    if (wake !== undefined) {
      // Setup is measured from the wake (docs/operations.md "Sleeping cameras").
      const waitedMs = wake.wokeAt - wake.requestedAt;
      await store.appendTrace(sessionId, { at: wake.requestedAt, kind: 'api', what: 'wake', detail: { deviceId } });
      await store.appendTrace(sessionId, { at: wake.wokeAt, kind: 'api', what: 'woke', detail: { deviceId, waitedMs } });
      opts.log?.info({ sessionId, deviceId, waitedMs }, 'session opened to a device that woke');
    }
    const offered = opts.onCreated?.(session, req.offer) === true && req.offer !== undefined;
    const answer = await present(session, req.ip, claims.sub);
    return offered ? { ...answer, offered: true } : answer;
  }

  return { create, present };
}
