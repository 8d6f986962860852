/**
 * `POST /v1/dev/token`: development tokens for the two-minute start. Registered only when the
 * server generated its token key (no --jwt-secret, no --jwt-public-key: the embedded development
 * default), where no one else can mint tokens anyway. Anyone who reaches the HTTP port can then
 * get a token — the reason it is off as soon as an operator gives a key.
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
import { badRequest } from './errors.ts';

export interface DevTokenOptions {
  /** The generated HS256 key the server verifies tokens with. */
  readonly secret: string;
  readonly log: Logger;
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
  opts.log.warn('development token endpoint POST /v1/dev/token is on (no --jwt-secret given): anyone reaching the HTTP port can get tokens');
  app.post<{ Body: DevTokenBody }>('/v1/dev/token', {
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
