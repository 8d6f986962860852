/** `p2pd serve`: the server. Validates every option first; a bad one stops the start. */
import { loadConfig } from '../config/config.ts';
import { SERVE_OPTIONS, formatHelp } from '../config/options.ts';
import { createLogger } from '../log.ts';
import { isRedisUnavailable } from '../redis.ts';
import { startNode } from '../server/node.ts';

export const SERVE_HELP = formatHelp('serve', 'Runs the p2pd server: STUN, TURN, signaling and the HTTP API.\n'
  + 'Options also come from --config FILE (YAML; keys are the option names without dashes). SIGHUP reloads the TLS certificate.', SERVE_OPTIONS);

export async function serve(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadConfig(argv, env);
  const log = createLogger(config.logLevel);
  // Workers must share the secrets the primary generated, so they get them explicitly.
  const workerEnv: NodeJS.ProcessEnv = { ...env, P2PD_AUTH_SECRET: config.authSecret, P2PD_JWT_SECRET: config.jwtSecret };
  if (config.authSecretGenerated) {
    log.warn('no --auth-secret: generated a random TURN REST secret; credentials will not survive a restart or work across nodes');
  }
  if (config.jwtSecretGenerated) {
    log.warn('no --jwt-secret: generated a random token key; tokens will not survive a restart or work across nodes');
  }
  // SIGHUP reloads the TLS certificate and key (docs/operations.md "Reloading the TLS certificate");
  // one that comes while the node starts finds the files it is reading anyway.
  // A Redis command that timed out, fired without a handler inside a library, must not end a
  // node holding thousands of connections (docs/signaling.md "Known limits"); anything else
  // unhandled is a bug and ends the process as Node would.
  process.on('unhandledRejection', (err: unknown) => {
    if (isRedisUnavailable(err)) {
      log.error({ err: (err as Error).message }, 'a redis command failed with nobody waiting for it');
      return;
    }
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  let reload = (): void => undefined;
  let stopping = false;
  process.on('SIGHUP', () => { if (!stopping) reload(); });
  const node = await startNode(config, log, { argv, env: workerEnv });
  reload = () => node.reload();
  // SIGTERM/SIGINT drain (docs/turn.md "Draining"): new sessions and allocations go elsewhere,
  // live relays get --drain-grace to end, then the node stops; a second signal skips the grace.
  let signals = 0;
  const stopNow = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    node.stop().then(
      () => { log.info('stopped'); process.exit(0); },
      (err: unknown) => { log.error({ err }, 'error while stopping'); process.exit(1); },
    );
  };
  const shutdown = (signal: string): void => {
    signals++;
    if (signals === 2 && config.drainGraceSec > 0) {
      log.info({ signal }, 'second signal: stopping without the rest of the drain grace');
      stopNow();
    }
    if (signals !== 1) return;
    log.info({ signal, drainGraceSec: config.drainGraceSec }, 'stopping');
    node.drain();
    if (config.drainGraceSec === 0) stopNow();
    else void node.settled().then(stopNow);
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
