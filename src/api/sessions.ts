/**
 * The session API (docs/reference.md "HTTP API"), a fastify plugin:
 *   POST   /v1/sessions            app token; only to devices the token allows
 *   GET    /v1/sessions/:id        the session's app or device
 *   DELETE /v1/sessions/:id        the session's app or device; 204, idempotent
 *   GET    /v1/sessions/:id/trace  the session's app or device
 *   GET    /v1/ice-servers         any valid token
 *   GET    /v1/signaling           any valid token: where to connect MQTT (a device has no session yet)
 * Every answer with a session carries `iceServers` for the caller: STUN nearest the caller first,
 * and the session's TURN node with TURN REST credentials, and `signaling`, the signaling nodes
 * nearest the caller first (docs/signaling.md "Finding a node"). Creation itself is session/actions.ts.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { CLIENT_ID_PATTERN, type ClientClaims, type TokenVerifier } from '../auth/token.ts';
import { buildIceServers } from '../cluster/iceServers.ts';
import { pickStunNodes, pickTurnNode } from '../cluster/placement.ts';
import { signalingServers } from '../cluster/signalingServers.ts';
import { sessionActions, type SessionActionsOptions, type SessionOffer } from '../session/actions.ts';
import { forbidden, sessionNotFound } from '../errors.ts';
import type { Session } from '../session/model.ts';
import { authenticate } from './auth.ts';

export interface SessionApiOptions extends SessionActionsOptions {
  readonly verifier: TokenVerifier;
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

const signalingSchema = {
  type: 'array',
  items: { type: 'object', properties: { urls: { type: 'array', items: { type: 'string' } } }, required: ['urls'] },
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
    signaling: signalingSchema,
    offered: { type: 'boolean' },
  },
  required: ['sessionId', 'deviceId', 'appId', 'status', 'turnNode', 'region', 'createdAt', 'updatedAt', 'ttl', 'iceServers', 'signaling'],
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
interface CreateBody { deviceId: string; sessionId?: string; offer?: SessionOffer }

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
          offer: {
            type: 'object',
            description: 'optional: the app\'s first offer, handed to the device as its offer message once the session is open',
            properties: {
              // A signaling message's bound (docs/signaling.md): the offer is delivered as one.
              sdp: { type: 'string', minLength: 1, maxLength: 65536 },
              msgId: { type: 'string', minLength: 1, maxLength: 128 },
              natType: { type: 'string', maxLength: 64 },
              iceTransportPolicy: { type: 'string', enum: ['direct'] },
            },
            required: ['sdp', 'msgId'],
            additionalProperties: false,
          },
        },
        required: ['deviceId'],
        additionalProperties: false,
      },
      response: { 201: sessionSchema, ...errors },
    },
  }, async (req, reply) => {
    const claims = await auth(req);
    const answer = await actions.create({ claims, deviceId: req.body.deviceId, sessionId: req.body.sessionId, ip: req.ip, offer: req.body.offer });
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

  app.get('/v1/signaling', {
    schema: {
      headers: authHeader,
      response: { 200: { type: 'object', properties: { signaling: signalingSchema }, required: ['signaling'] }, ...errors },
    },
  }, async (req) => {
    const claims = await auth(req);
    return { signaling: signalingServers(cluster.nodes(), claims.sub, cluster.regionOf(req.ip)) };
  });
};
