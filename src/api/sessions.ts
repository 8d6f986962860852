/**
 * The session API (CONTRACT.md §2), a fastify plugin:
 *   POST   /v1/sessions            app token; only to devices the token allows
 *   GET    /v1/sessions/:id        the session's app or device
 *   DELETE /v1/sessions/:id        the session's app or device; 204, idempotent
 *   GET    /v1/sessions/:id/trace  the session's app or device
 *   GET    /v1/ice-servers         any valid token
 * Every answer with a session carries `iceServers` for the caller: STUN nearest the caller first,
 * and the session's TURN node with TURN REST credentials.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { allowsDevice, CLIENT_ID_PATTERN, type ClientClaims, type TokenVerifier } from '../auth/token.ts';
import { buildIceServers, stunUrl, type IceServer } from '../cluster/iceServers.ts';
import { pickStunNodes, pickTurnNode } from '../cluster/placement.ts';
import type { ClusterView } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import { P2pdError, deviceOffline, forbidden, noTurnNode, sessionNotFound } from '../errors.ts';
import { sessionsRefusedTotal } from '../metrics/metrics.ts';
import { newSession, type Session } from '../session/model.ts';
import type { SessionStore } from '../session/store.ts';
import { authenticate } from './auth.ts';

export interface SessionApiOptions {
  readonly store: SessionStore;
  readonly verifier: TokenVerifier;
  readonly cluster: ClusterView;
  /** TURN REST shared secret (`--auth-secret`). */
  readonly authSecret: string;
  /** `--session-ttl`. */
  readonly sessionTtlSec: number;
  /** `--max-sessions-per-app`: open sessions per app (TOO_MANY_SESSIONS past it); 0 = no cap. */
  readonly maxSessionsPerApp?: number;
  /** Device presence from signaling: false = offline (409), undefined = unknown (allowed). */
  readonly isDeviceOnline?: ((deviceId: string) => boolean | undefined) | undefined;
  readonly log?: Logger | undefined;
  readonly nowMs?: () => number;
  /** Called with each session opened here, once stored (signaling announces it to its device). */
  readonly onCreated?: ((session: Session) => void) | undefined;
}

/** Session ids: a UUID by default; a client may bring its own of this shape. */
export const SESSION_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
} as const;

const iceServersSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: { urls: { type: 'array', items: { type: 'string' } }, username: { type: 'string' }, credential: { type: 'string' } },
    required: ['urls'],
  },
} as const;

const sessionSchema = {
  type: 'object',
  properties: {
    sessionId: { type: 'string' },
    deviceId: { type: 'string' },
    appId: { type: 'string' },
    status: { type: 'string', enum: ['connecting', 'connected', 'closed'] },
    stunServer: { type: 'string' },
    turnNode: { type: 'string' },
    turnAllocation: { type: 'string' },
    region: { type: 'string' },
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
    ttl: { type: 'integer' },
    lastSeenAt: { type: 'integer' },
    closeReason: { type: 'string' },
    iceServers: iceServersSchema,
  },
  required: ['sessionId', 'deviceId', 'appId', 'status', 'turnNode', 'region', 'createdAt', 'updatedAt', 'ttl', 'iceServers'],
} as const;

const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 429: errorSchema, 503: errorSchema };
const idParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: SESSION_ID_PATTERN } },
  required: ['id'],
} as const;
const authHeader = {
  type: 'object',
  properties: { authorization: { type: 'string', description: 'Bearer <client token>' } },
} as const;

interface IdParams { id: string }
interface CreateBody { deviceId: string; sessionId?: string }

/** A session as answered to a caller: the record plus `iceServers` for that caller. */
export type SessionAnswer = Session & { readonly iceServers: IceServer[] };

export interface CreateSessionRequest {
  readonly claims: ClientClaims;
  readonly deviceId: string;
  /** The caller's IP address (places it in a region); the node's region when absent. */
  readonly ip?: string | undefined;
  /** A client-chosen id (SESSION_EXISTS when taken); a UUID otherwise. */
  readonly sessionId?: string | undefined;
}

export interface SessionActions {
  /**
   * Opens a session: the app token must allow the device (FORBIDDEN), the device must not be
   * known offline (DEVICE_OFFLINE), the app must be under --max-sessions-per-app
   * (TOO_MANY_SESSIONS), a TURN node must take it (NO_TURN_NODE). The one creation
   * used by `POST /v1/sessions` and by signaling's `session` request alike.
   */
  create(req: CreateSessionRequest): Promise<SessionAnswer>;
  /** The session with ICE servers for a caller; moves it off a TURN node that left the cluster. */
  present(session: Session, callerIp: string | undefined, callerSub: string): Promise<SessionAnswer>;
}

export function sessionActions(opts: SessionApiOptions): SessionActions {
  const { store, cluster } = opts;
  const nowMs = opts.nowMs ?? Date.now;
  const regionOf = (ip: string | undefined): string => cluster.regionOf(ip ?? '');

  async function present(session: Session, callerIp: string | undefined, callerSub: string): Promise<SessionAnswer> {
    const nodes = cluster.nodes();
    let s = session;
    let turn = nodes.find((n) => n.id === s.turnNode && n.roles.includes('turn'));
    if (!turn && s.status !== 'closed') {
      // Its node is gone: every node picks the same successor (HRW over the same live set).
      turn = pickTurnNode(nodes, s.sessionId, s.region);
      if (turn) {
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
    return { ...s, iceServers };
  }

  async function create(req: CreateSessionRequest): Promise<SessionAnswer> {
    const { claims, deviceId } = req;
    if (claims.role !== 'app') throw forbidden('only app tokens open sessions');
    if (!allowsDevice(claims, deviceId)) throw forbidden(`this token does not allow device ${JSON.stringify(deviceId)}`);
    if (opts.isDeviceOnline?.(deviceId) === false) throw deviceOffline(deviceId);
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
      await store.create(session, { maxOpenPerApp: opts.maxSessionsPerApp ?? 0 });
    } catch (err) {
      if (err instanceof P2pdError && err.code === 'TOO_MANY_SESSIONS') {
        sessionsRefusedTotal.inc({ code: err.code });
        opts.log?.info({ appId: claims.sub, max: opts.maxSessionsPerApp }, 'session refused: TOO_MANY_SESSIONS');
      }
      throw err;
    }
    opts.log?.debug({ sessionId, deviceId, appId: claims.sub, turnNode: turn.id, region }, 'session created');
    opts.onCreated?.(session);
    return present(session, req.ip, claims.sub);
  }

  return { create, present };
}

export const sessionRoutes: FastifyPluginAsync<SessionApiOptions> = async (app, opts) => {
  const { store, verifier, cluster } = opts;
  const nowMs = opts.nowMs ?? Date.now;
  const auth = (req: FastifyRequest): Promise<ClientClaims> => authenticate(req, verifier);
  const actions = sessionActions(opts);

  const isParty = (c: ClientClaims, s: Session): boolean =>
    (c.role === 'app' && c.sub === s.appId) || (c.role === 'device' && c.sub === s.deviceId);

  /** Reads a session the caller may see: SESSION_NOT_FOUND (404) or FORBIDDEN (403) otherwise. */
  async function readOwn(req: FastifyRequest<{ Params: IdParams }>): Promise<{ claims: ClientClaims; session: Session }> {
    const claims = await auth(req);
    const session = await store.get(req.params.id);
    if (!session) throw sessionNotFound(req.params.id);
    if (!isParty(claims, session)) throw forbidden('only the session\'s app or device may use it');
    return { claims, session };
  }

  app.post<{ Body: CreateBody }>('/v1/sessions', {
    schema: {
      headers: authHeader,
      body: {
        type: 'object',
        properties: {
          deviceId: { type: 'string', pattern: CLIENT_ID_PATTERN.source },
          sessionId: { type: 'string', pattern: SESSION_ID_PATTERN, description: 'optional: the client\'s own id (retries then get SESSION_EXISTS)' },
        },
        required: ['deviceId'],
        additionalProperties: false,
      },
      response: { 201: sessionSchema, ...errors },
    },
  }, async (req, reply) => {
    const claims = await auth(req);
    const answer = await actions.create({ claims, deviceId: req.body.deviceId, sessionId: req.body.sessionId, ip: req.ip });
    return reply.status(201).send(answer);
  });

  app.get<{ Params: IdParams }>('/v1/sessions/:id', {
    schema: { headers: authHeader, params: idParams, response: { 200: sessionSchema, ...errors } },
  }, async (req) => {
    const { claims, session } = await readOwn(req);
    return actions.present(session, req.ip, claims.sub);
  });

  app.delete<{ Params: IdParams }>('/v1/sessions/:id', {
    schema: { headers: authHeader, params: idParams, response: { 204: { type: 'null' }, ...errors } },
  }, async (req, reply) => {
    const { session } = await readOwn(req);
    const closedNow = await store.close(session.sessionId, 'deleted', Math.floor(nowMs() / 1000));
    if (closedNow) opts.log?.info({ sessionId: session.sessionId }, 'session closed by DELETE');
    return reply.status(204).send();
  });

  app.get<{ Params: IdParams }>('/v1/sessions/:id/trace', {
    schema: {
      headers: authHeader,
      params: idParams,
      response: {
        200: {
          type: 'object',
          properties: {
            events: {
              type: 'array',
              items: {
                type: 'object',
                properties: { at: { type: 'number' }, kind: { type: 'string' }, what: { type: 'string' }, detail: { type: 'object', additionalProperties: true } },
                required: ['at', 'kind', 'what'],
              },
            },
          },
        },
        ...errors,
      },
    },
  }, async (req) => {
    const { session } = await readOwn(req);
    return { events: await store.trace(session.sessionId) };
  });

  app.get('/v1/ice-servers', {
    schema: {
      headers: authHeader,
      response: {
        200: { type: 'object', properties: { iceServers: iceServersSchema, expiresAt: { type: 'integer' } }, required: ['iceServers', 'expiresAt'] },
        ...errors,
      },
    },
  }, async (req) => {
    const claims = await auth(req);
    const nodes = cluster.nodes();
    const region = cluster.regionOf(req.ip);
    const expiresAt = Math.floor(nowMs() / 1000) + opts.sessionTtlSec;
    const iceServers = buildIceServers({
      stun: pickStunNodes(nodes, claims.sub, region),
      turn: pickTurnNode(nodes, claims.sub, region),
      secret: opts.authSecret,
      sessionId: '',
      sub: claims.sub,
      expiresAt,
    });
    return { iceServers, expiresAt };
  });
};
