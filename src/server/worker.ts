/**
 * Entry point of a STUN/TURN worker process (forked by the primary with node:cluster). Builds the
 * same configuration as the primary from the arguments and environment it was given, binds the
 * shared ports with SO_REUSEPORT and answers the primary's requests over IPC.
 */
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../log.ts';
import { enableDefaultMetrics, registry } from '../metrics/metrics.ts';
import { isPrimaryMessage, type WorkerToPrimary } from './ipc.ts';
import { startPacketRoles } from './roles.ts';
import { P2pdError } from '../errors.ts';

const send = (m: WorkerToPrimary): void => {
  if (process.connected) process.send?.(m);
};

const config = loadConfig(process.argv.slice(2), process.env);
const log = createLogger(config.logLevel, { role: 'worker' });
enableDefaultMetrics();

// The primary decides when to stop: a terminal's Ctrl-C reaches the whole process group.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
// SIGHUP reloads (docs/operations.md): the primary reads the new certificate and sends it over IPC.
process.on('SIGHUP', () => undefined);

try {
  const roles = await startPacketRoles(config, log, true);
  process.on('message', (m: unknown) => {
    if (!isPrimaryMessage(m)) return;
    if (m.t === 'metrics') void registry.getMetricsAsJSON().then((data) => send({ t: 'metrics', id: m.id, data }));
    else if (m.t === 'stats') send({ t: 'stats', id: m.id, data: roles.stats() });
    else if (m.t === 'release-session') roles.releaseSession(m.sessionId);
    else if (m.t === 'tls-credentials') {
      try {
        roles.setTlsCredentials(Buffer.from(m.cert), Buffer.from(m.key));
      } catch (err) {
        log.error({ err }, 'TLS certificate reload failed in this worker; it keeps the old one');
      }
    }
  });
  process.on('disconnect', () => {
    void roles.stop().finally(() => process.exit(0));
  });
  send({ t: 'ready' });
} catch (err) {
  const e = err as Error & { code?: string };
  const code = err instanceof P2pdError ? err.code : (e.code ?? 'WORKER_START_FAILED');
  send({ t: 'fatal', code, message: e.message });
  log.fatal({ err }, 'worker failed to start');
  process.exit(1);
}
