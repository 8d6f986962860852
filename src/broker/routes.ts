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
 *
 *   It sits on the public HTTP port, so it is a password oracle unless guarded: with
 *   `--broker-hook-secret` a caller must send it in `x-p2pd-hook-secret` (compared in constant
 *   time); without one only loopback callers are answered (EMQX beside p2pd). Others get 403
 *   HOOK_FORBIDDEN. Failed logins are budgeted per source (the MQTT client's `peerhost` when EMQX
 *   sends it, else the caller's address): past LOGIN_FAILURES_BURST, 429 RATE_LIMITED without
 *   checking the password, one more try per LOGIN_FAILURE_INTERVAL_MS. docs/signaling.md "EMQX".
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ClientClaims, TokenVerifier } from '../auth/token.ts';
import type { Logger } from '../log.ts';
import { aclRules, type AclRule } from '../signaling/acl.ts';
import { SERVER_ID } from '../signaling/topics.ts';
import type { DynsecProvisioner } from './dynsec.ts';
import { bearerToken } from '../api/auth.ts';
import { isLoopback } from '../api/devToken.ts';
import { hookForbidden, rateLimited } from '../errors.ts';
import { LocalRateLimiter } from '../api/rateLimit.ts';
import { httpRefusedTotal } from '../metrics/metrics.ts';

/** The header EMQX sends the shared secret of `--broker-hook-secret` in. */
export const HOOK_SECRET_HEADER = 'x-p2pd-hook-secret';
/** Failed logins one source may make at once, then one per interval (a token bucket). */
export const LOGIN_FAILURES_BURST = 10;
export const LOGIN_FAILURE_INTERVAL_MS = 1000;

export interface BrokerRoutesOptions {
  readonly verifier: TokenVerifier;
  readonly log: Logger;
  /** Set behind Mosquitto with dynamic security. */
  readonly provisioner?: DynsecProvisioner;
  /** The signaling service's own broker login (from --mqtt-url), allowed as superuser by /v1/mqtt/auth. */
  readonly serviceLogin?: { readonly username: string; readonly password: string };
  /** `--broker-hook-secret`: /v1/mqtt/auth wants it in x-p2pd-hook-secret; absent = loopback callers only. */
  readonly hookSecret?: string | undefined;
  /** Most sources whose failed logins are remembered (default 50,000). */
  readonly maxLoginSources?: number;
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

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** 429 RATE_LIMITED with retry-after; EMQX takes any answer but 200 as "no decision", which denies the login. */
function tooMany(reply: FastifyReply, waitMs: number): FastifyReply {
  httpRefusedTotal.inc({ code: 'LOGINS_RATE_LIMITED' });
  const retryAfterSec = Math.max(1, Math.ceil(waitMs / 1000));
  return reply.status(429).header('retry-after', String(retryAfterSec)).send({ result: 'deny', error: rateLimited('logins', retryAfterSec).toJSON() });
}

export function registerBrokerRoutes(app: FastifyInstance, opts: BrokerRoutesOptions): void {
  const { verifier, provisioner, serviceLogin } = opts;

  app.post('/v1/mqtt/credentials', async (req) => {
    const token = bearerToken(req.headers);
    const claims: ClientClaims = await verifier.verify(token);
    if (provisioner) await provisioner.provision(claims, token);
    return { username: claims.sub, expiresAt: claims.exp, provisioned: provisioner !== undefined };
  });

  const failures = new LocalRateLimiter({
    perSec: 1000 / LOGIN_FAILURE_INTERVAL_MS, burst: LOGIN_FAILURES_BURST, ...(opts.maxLoginSources ? { maxKeys: opts.maxLoginSources } : {}),
  });
  const { hookSecret } = opts;

  app.post('/v1/mqtt/auth', {
    // Before the body is parsed: a caller without the secret learns nothing and costs little.
    onRequest: async (req, reply) => {
      const ip = req.socket.remoteAddress;
      if (hookSecret === undefined) {
        if (isLoopback(ip)) return undefined;
        httpRefusedTotal.inc({ code: 'HOOK_FORBIDDEN' });
        throw hookForbidden('/v1/mqtt/auth answers callers on this machine only; give p2pd --broker-hook-secret and send it in x-p2pd-hook-secret to call it from elsewhere');
      }
      const wait = failures.waitNow(`hook:${ip ?? ''}`);
      if (wait > 0) return tooMany(reply, wait);
      const sent = req.headers[HOOK_SECRET_HEADER];
      if (typeof sent === 'string' && sameSecret(sent, hookSecret)) return undefined;
      failures.takeNow(`hook:${ip ?? ''}`);
      httpRefusedTotal.inc({ code: 'HOOK_FORBIDDEN' });
      throw hookForbidden(`/v1/mqtt/auth wants the --broker-hook-secret in ${HOOK_SECRET_HEADER}`);
    },
    schema: {
      body: {
        type: 'object',
        properties: { username: { type: 'string' }, password: { type: 'string' }, clientid: { type: 'string' }, peerhost: { type: 'string', maxLength: 64 } },
        required: ['username', 'password'],
      },
    },
  }, async (req, reply) => {
    const { username, password, peerhost } = req.body as { username: string; password: string; peerhost?: string };
    // The MQTT client's address when EMQX tells it (the caller is trusted by now), else the caller's.
    const source = `login:${peerhost !== undefined && peerhost !== '' ? peerhost : req.socket.remoteAddress ?? ''}`;
    const wait = failures.waitNow(source);
    if (wait > 0) return tooMany(reply, wait);
    const deny = (): { result: 'deny' } => {
      failures.takeNow(source);
      httpRefusedTotal.inc({ code: 'LOGIN_FAILED' });
      return { result: 'deny' };
    };
    if (serviceLogin && username === serviceLogin.username) {
      return sameSecret(password, serviceLogin.password) ? { result: 'allow', is_superuser: true } : deny();
    }
    try {
      const claims = await verifier.verify(password);
      if (claims.sub !== username || claims.sub === SERVER_ID) return deny();
      return { result: 'allow', is_superuser: false, acl: emqxAcl(aclRules(claims)), expire_at: claims.exp };
    } catch (err) {
      opts.log.debug({ err, username }, 'EMQX login refused');
      return deny();
    }
  });
}
