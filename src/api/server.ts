/**
 * The HTTP side of p2pd (fastify): health, readiness and metrics here; the session API, MQTT over
 * WebSocket and the web pages register themselves as plugins. Every error leaves as
 * `{"error": {"code", "message"}}` with a stable code (docs/reference.md "HTTP API").
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../log.ts';
import { P2pdError, notFound, notReady, rateLimited } from '../errors.ts';
import { httpRateLimitedTotal } from '../metrics/metrics.ts';
import { parseBearer } from './auth.ts';
import { sourceKey, tokenKey, type RateLimiter } from './rateLimit.ts';

/** A readiness check: returns undefined when ready, or why not. */
export type ReadinessCheck = () => string | undefined;

export interface HttpServerOptions {
  readonly logger: Logger;
  /** Prometheus text of every process of this node. */
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly readiness: readonly ReadinessCheck[];
  /**
   * `--http-timeout`: a request's headers, and its whole body, must arrive within this; an idle
   * keep-alive connection closes sooner (default 10 s).
   */
  readonly timeoutSec?: number;
  /** Budgets per bearer token and per source address (429 RATE_LIMITED past them); none = unlimited. */
  readonly rateLimits?: { readonly token?: RateLimiter | undefined; readonly source?: RateLimiter | undefined };
}

/** Probes must answer whoever floods the port: kubelet and load balancers share no budget with strangers. */
const UNLIMITED_PATHS = new Set(['/healthz', '/readyz']);

/** Node's http timeouts for `timeoutSec` (slowloris: headers sent a byte at a time are cut at it). */
export function httpTimeouts(timeoutSec: number): { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number; keepAliveTimeout: number; connectionTimeout: number } {
  const ms = Math.round(timeoutSec * 1000);
  return {
    headersTimeout: ms,
    requestTimeout: ms,
    // Node checks the two above only this often (default 30 s, which would triple a 10 s bound).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(ms / 4))),
    keepAliveTimeout: Math.min(5000, ms),
    // A socket silent both ways (no request arriving, no answer leaving) for twice the bound.
    connectionTimeout: 2 * ms,
  };
}

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const t = httpTimeouts(opts.timeoutSec ?? 10);
  const app = Fastify({
    loggerInstance: opts.logger.child({ role: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    http: { headersTimeout: t.headersTimeout, requestTimeout: t.requestTimeout, connectionsCheckingInterval: t.connectionsCheckingInterval },
    requestTimeout: t.requestTimeout,
    keepAliveTimeout: t.keepAliveTimeout,
    connectionTimeout: t.connectionTimeout,
  });
  const { token: tokenLimit, source: sourceLimit } = opts.rateLimits ?? {};
  if (tokenLimit || sourceLimit) {
    app.addHook('onRequest', async (req, reply) => {
      if (UNLIMITED_PATHS.has(req.url.split('?')[0] ?? '')) return;
      const refuse = (scope: 'token' | 'source', waitMs: number) => {
        httpRateLimitedTotal.inc({ scope });
        const retryAfterSec = Math.max(1, Math.ceil(waitMs / 1000));
        return reply.status(429).header('retry-after', String(retryAfterSec)).send({ error: rateLimited(scope, retryAfterSec).toJSON() });
      };
      if (sourceLimit) {
        // The socket's address, not a forwarded header a client could choose.
        const wait = await sourceLimit.take(sourceKey(req.socket.remoteAddress ?? req.ip));
        if (wait > 0) return refuse('source', wait);
      }
      const token = tokenLimit ? parseBearer(req.headers.authorization) : undefined;
      if (tokenLimit && token !== undefined) {
        const wait = await tokenLimit.take(tokenKey(token));
        if (wait > 0) return refuse('token', wait);
      }
      return undefined;
    });
  }

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof P2pdError) {
      void reply.status(err.statusCode).send({ error: err.toJSON() });
      return;
    }
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message: string };
    if (e.validation) {
      void reply.status(400).send({ error: { code: 'BAD_REQUEST', message: e.message } });
      return;
    }
    const status = e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'request failed');
    const code = status === 500 ? 'INTERNAL' : e.code?.startsWith('FST_') ? 'BAD_REQUEST' : (e.code ?? 'BAD_REQUEST');
    void reply.status(status).send({ error: { code, message: status === 500 ? 'internal error' : e.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    const err = notFound(`route ${req.method} ${req.url.split('?')[0]}`);
    void reply.status(404).send({ error: err.toJSON() });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    for (const check of opts.readiness) {
      const reason = check();
      if (reason !== undefined) {
        const err = notReady(reason);
        return reply.status(503).send({ status: 'not ready', error: err.toJSON() });
      }
    }
    return { status: 'ready' };
  });
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await opts.metrics();
    return reply.type(contentType).send(body);
  });
  return app;
}
