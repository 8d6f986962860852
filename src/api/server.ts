/**
 * The HTTP side of p2pd (fastify): health, readiness and metrics here; the session API, MQTT over
 * WebSocket and the web pages register themselves as plugins. Every error leaves as
 * `{"error": {"code", "message"}}` with a stable code (CONTRACT.md §2).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../log.ts';
import { P2pdError } from '../errors.ts';
import { notFound, notReady } from './errors.ts';

/** A readiness check: returns undefined when ready, or why not. */
export type ReadinessCheck = () => string | undefined;

export interface HttpServerOptions {
  readonly logger: Logger;
  /** Prometheus text of every process of this node. */
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly readiness: readonly ReadinessCheck[];
}

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app = Fastify({ loggerInstance: opts.logger.child({ role: 'http' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 256 * 1024 });

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
