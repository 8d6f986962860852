/**
 * HTTP routes for external brokers:
 *
 * - `POST /v1/mqtt/credentials` (Bearer token): a client calls it before connecting to the broker.
 *   Behind Mosquitto with dynamic security it writes the token's rights into the broker (see
 *   dynsec.ts); with the embedded broker or EMQX there is nothing to write. Answers
 *   `{"username": sub, "expiresAt": exp, "provisioned": bool}`.
 * - `POST /v1/mqtt/auth`: EMQX's HTTP authenticator. Body `{"username", "password", "clientid"}`;
 *   answers `{"result": "allow", "is_superuser": false, "acl": [...], "expire_at": exp}` built from
 *   the same rules as the embedded broker, or `{"result": "deny"}`. The signaling service's own
 *   user (from --mqtt-url) is the one superuser.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tokenMissing } from '../auth/errors.ts';
import type { ClientClaims, TokenVerifier } from '../auth/token.ts';
import type { Logger } from '../log.ts';
import { aclRules, type AclRule } from '../signaling/acl.ts';
import { SERVER_ID } from '../signaling/topics.ts';
import type { DynsecProvisioner } from './dynsec.ts';

export interface BrokerRoutesOptions {
  readonly verifier: TokenVerifier;
  readonly log: Logger;
  /** Set behind Mosquitto with dynamic security. */
  readonly provisioner?: DynsecProvisioner;
  /** The signaling service's own broker login (from --mqtt-url), allowed as superuser by /v1/mqtt/auth. */
  readonly serviceLogin?: { readonly username: string; readonly password: string };
}

export interface EmqxAclRule {
  readonly permission: 'allow' | 'deny';
  readonly action: 'publish' | 'subscribe';
  readonly topic: string;
  readonly retain?: boolean;
}

/** EMQX ≥ 5.8 `acl` of an HTTP authentication answer (its "new format"): only what the rules allow. */
export function emqxAcl(rules: readonly AclRule[]): EmqxAclRule[] {
  return rules.map((r) => (r.action === 'publish' && r.retain !== true
    ? { permission: 'allow', action: 'publish', topic: r.topic, retain: false }
    : { permission: 'allow', action: r.action, topic: r.topic }));
}

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) throw tokenMissing();
  return h.slice('Bearer '.length).trim();
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function registerBrokerRoutes(app: FastifyInstance, opts: BrokerRoutesOptions): void {
  const { verifier, provisioner, serviceLogin } = opts;

  app.post('/v1/mqtt/credentials', async (req) => {
    const token = bearer(req);
    const claims: ClientClaims = await verifier.verify(token);
    if (provisioner) await provisioner.provision(claims, token);
    return { username: claims.sub, expiresAt: claims.exp, provisioned: provisioner !== undefined };
  });

  app.post('/v1/mqtt/auth', {
    schema: {
      body: {
        type: 'object',
        properties: { username: { type: 'string' }, password: { type: 'string' }, clientid: { type: 'string' } },
        required: ['username', 'password'],
      },
    },
  }, async (req) => {
    const { username, password } = req.body as { username: string; password: string };
    if (serviceLogin && username === serviceLogin.username) {
      return sameSecret(password, serviceLogin.password) ? { result: 'allow', is_superuser: true } : { result: 'deny' };
    }
    try {
      const claims = await verifier.verify(password);
      if (claims.sub !== username || claims.sub === SERVER_ID) return { result: 'deny' };
      return { result: 'allow', is_superuser: false, acl: emqxAcl(aclRules(claims)), expire_at: claims.exp };
    } catch (err) {
      opts.log.debug({ err, username }, 'EMQX login refused');
      return { result: 'deny' };
    }
  });
}
