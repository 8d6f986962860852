/**
 * `POST /v1/dev/token`: development tokens for the two-minute start. Registered only when the
 * server generated its token key (no --jwt-secret, no --jwt-public-key: the embedded development
 * default), where no one else can mint tokens anyway, and not with `--dev-tokens off`.
 *
 * A token names any `sub`, so whoever gets one can be any camera or app: it answers callers on
 * this machine only (loopback, by the socket's address, never a forwarded header), others get
 * 403 DEV_TOKENS_LOOPBACK_ONLY. `--dev-tokens lan` opens it to every caller, with a warning at
 * start (a trusted LAN, a lab).
 *
 *   POST /v1/dev/token {"role": "app"}                       → an app token for every device
 *   POST /v1/dev/token {"role": "app", "devices": ["cam-1"]}  → an app token for cam-1
 *   POST /v1/dev/token {"role": "device", "sub": "cam-1"}    → cam-1's device token
 *   201 {"token": "...", "sub": "...", "role": "...", "expiresAt": 1750933436}
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CLIENT_ID_PATTERN, createHs256Signer } from '../auth/token.ts';
import type { Logger } from '../log.ts';
import { httpRefusedTotal } from '../metrics/metrics.ts';
import { badRequest, devTokensLoopbackOnly } from '../errors.ts';

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x: the caller is on this machine. */
export function isLoopback(ip: string | undefined): boolean {
  if (ip === undefined) return false;
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return v4.startsWith('127.') || ip === '::1';
}

/** Who gets development tokens (`--dev-tokens`, default loopback). */
export type DevTokenReach = 'loopback' | 'lan';

/** Whether a caller at `ip` may get a development token under `reach`. */
export const devTokenAllowed = (reach: DevTokenReach, ip: string | undefined): boolean => reach === 'lan' || isLoopback(ip);

export interface DevTokenOptions {
  /** The generated HS256 key the server verifies tokens with. */
  readonly secret: string;
  readonly log: Logger;
  /** Default loopback. */
  readonly reach?: DevTokenReach;
  /** Token lifetime (default 12 h). */
  readonly ttlSec?: number;
}

interface DevTokenBody {
  role: 'app' | 'device';
  sub?: string;
  devices?: string[];
}

export function registerDevTokenRoute(app: FastifyInstance, opts: DevTokenOptions): void {
  const signer = createHs256Signer(opts.secret);
  const ttlSec = opts.ttlSec ?? 12 * 3600;
  const reach = opts.reach ?? 'loopback';
  if (reach === 'lan') {
    opts.log.warn('DEVELOPMENT TOKENS OPEN TO THE NETWORK (--dev-tokens lan): anyone reaching the HTTP port can get a token for any device or app id and take its place; use only on a trusted network, never on the internet');
  } else {
    opts.log.warn('development token endpoint POST /v1/dev/token is on for callers on this machine (no --jwt-secret given); give --jwt-secret for real tokens');
  }
  app.post<{ Body: DevTokenBody }>('/v1/dev/token', {
    // Before the body is read or validated: a stranger learns nothing but the refusal.
    onRequest: async (req) => {
      if (!devTokenAllowed(reach, req.socket.remoteAddress)) {
        httpRefusedTotal.inc({ code: 'DEV_TOKENS_LOOPBACK_ONLY' });
        req.log.warn({ ip: req.socket.remoteAddress }, 'development token refused: caller not on loopback');
        throw devTokensLoopbackOnly();
      }
    },
    schema: {
      body: {
        type: 'object',
        properties: {
          role: { type: 'string', enum: ['app', 'device'] },
          sub: { type: 'string', pattern: CLIENT_ID_PATTERN.source, description: 'the id (required for devices; apps get a random one)' },
          devices: { type: 'array', items: { type: 'string', pattern: `^(\\*|${CLIENT_ID_PATTERN.source.slice(1, -1)})$` }, maxItems: 1000 },
        },
        required: ['role'],
        additionalProperties: false,
      },
      response: {
        201: {
          type: 'object',
          properties: { token: { type: 'string' }, sub: { type: 'string' }, role: { type: 'string' }, expiresAt: { type: 'integer' } },
          required: ['token', 'sub', 'role', 'expiresAt'],
        },
      },
    },
  }, async (req, reply) => {
    const { role } = req.body;
    if (role === 'device' && req.body.sub === undefined) {
      throw badRequest('a device token needs "sub" (the device id)');
    }
    if (role === 'device' && req.body.devices !== undefined) {
      throw badRequest('"devices" is for app tokens');
    }
    const sub = req.body.sub ?? `app-${randomBytes(4).toString('hex')}`;
    const devices = role === 'app' ? req.body.devices ?? ['*'] : [];
    const token = await signer.sign({ sub, role, devices, ttlSec });
    req.log.info({ sub, role }, 'development token issued');
    return reply.status(201).send({ token, sub, role, expiresAt: Math.floor(Date.now() / 1000) + ttlSec });
  });
}
