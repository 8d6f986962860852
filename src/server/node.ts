/**
 * One p2pd node: the primary process. Starts the STUN/TURN workers (or runs them in-process for
 * --workers 1), the HTTP server with health, readiness and metrics, reloads the TLS certificate
 * on SIGHUP (tlsReload.ts), and stops everything in order on SIGINT/SIGTERM.
 */
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { createHttpServer } from '../api/server.ts';
import { enableDefaultMetrics, registry } from '../metrics/metrics.ts';
import { WorkerPool, workerExecArgv } from './workers.ts';
import { assertPortsFree } from '../transport/portGuard.ts';
import { startPacketRoles, storeSessionLookup, turnPrimaryHooks, type PacketRoles, type TurnPrimaryHooks } from './roles.ts';
import { SessionGate } from '../turn/reservationClient.ts';
import { startSessionServices, type SessionServices } from './sessionServices.ts';
import { startSignaling, type SignalingRole } from './signalingRole.ts';
import { devTokenAllowed, registerDevTokenRoute } from '../api/devToken.ts';
import { registerWebRoutes } from '../api/web.ts';
import { remoteRelays } from '../cluster/nodeInfo.ts';
import { signalingServers } from '../cluster/signalingServers.ts';
import { createHttpRateLimits } from '../api/rateLimit.ts';
import { TlsReloader } from './tlsReload.ts';
import { Drain } from './drain.ts';
import type { RelayUsage } from '../turn/usageMeter.ts';

export interface RunningNode {
  readonly http: FastifyInstance;
  /** Base URL of the HTTP server as bound (with the real port when --http asked for port 0). */
  readonly httpUrl: string;
  /**
   * Marks the node as draining: /readyz goes red, new sessions and allocations go to other nodes
   * (drain.ts); in-flight work continues.
   */
  drain(): void;
  /** SIGHUP: reloads the TLS certificate and key (docs/operations.md); nothing else is reread. */
  reload(): void;
  /** After drain(): resolves once no relay is left here or --drain-grace has run out. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export interface NodeStartOptions {
  /** The command line after `serve`, handed to workers so they build the same configuration. */
  readonly argv: readonly string[];
  /** Environment for workers: the caller's, plus any secrets generated at start. */
  readonly env: NodeJS.ProcessEnv;
}

export async function startNode(config: Config, log: Logger, opts: NodeStartOptions): Promise<RunningNode> {
  enableDefaultMetrics();
  const packetRoles = config.roles.has('stun') || config.roles.has('turn');
  let pool: WorkerPool | undefined;
  let local: PacketRoles | undefined;
  // TURN refuses credentials of closed sessions by asking the store (set once it runs, below).
  const turnSessions = new SessionGate();
  let turnHooks: TurnPrimaryHooks = {};
  // What the relay metered goes to the usage recorder once the session services run (below).
  const usageSink: { record?: (batch: readonly RelayUsage[]) => void } = {};
  const onUsage = (batch: readonly RelayUsage[]): void => usageSink.record?.(batch);
  if (packetRoles) {
    if (config.workers > 1) {
      turnHooks = turnPrimaryHooks(config, turnSessions, (m) => pool?.broadcast(m), onUsage);
      pool = new WorkerPool({
        count: config.workers,
        exec: fileURLToPath(new URL('./worker.ts', import.meta.url)),
        args: opts.argv,
        env: opts.env,
        execArgv: workerExecArgv(process.execArgv, opts.env.NODE_OPTIONS),
        logger: log,
        onRequest: turnHooks.onRequest,
        onExit: turnHooks.onExit,
      });
      const ports = [{ port: config.port, udp: true, tcp: true }];
      if (config.tls) ports.push({ port: config.tls.port, udp: false, tcp: true });
      await assertPortsFree(config.listen, ports);
      if (config.alt) await assertPortsFree(config.alt.ip, [{ port: config.port, udp: true, tcp: false }, { port: config.alt.port, udp: true, tcp: false }]);
      await pool.start();
    } else {
      local = await startPacketRoles(config, log, false, turnSessions, onUsage);
    }
  }

  // --- TLS reload (issue 14): the primary reads and checks the pair, then hands it to its own
  // listener or sends it to every worker, so that all of them serve the same certificate.
  let tlsReloader: TlsReloader | undefined;
  if (packetRoles && config.tls && config.roles.has('turn')) {
    tlsReloader = new TlsReloader({
      certFile: config.tls.certFile,
      keyFile: config.tls.keyFile,
      log,
      apply: (cert, key) => {
        if (pool) pool.broadcast({ t: 'tls-credentials', cert: cert.toString('utf8'), key: key.toString('utf8') });
        else local?.setTlsCredentials(cert, key);
      },
    });
    tlsReloader.watch();
  }
  // --- end TLS reload

  let draining = false;
  const loadNow = async (): Promise<{ allocations: number; bps: number }> => (pool ? pool.stats() : local?.stats() ?? { allocations: 0, bps: 0 });
  // Budgets per token and per source (issue 10): shared through Redis when the sessions are.
  const rateLimits = createHttpRateLimits({ tokenPerSec: config.rateLimitToken, sourcePerSec: config.rateLimitSource, redisUrls: config.redisUrls, log });
  const http = createHttpServer({
    logger: log,
    timeoutSec: config.httpTimeoutSec,
    rateLimits,
    // (`sessions` is bound below, before the server listens: /readyz cannot run earlier.)
    readiness: [() => (draining ? 'draining' : undefined), () => sessions.unready()],
    metrics: async () => {
      const own = await registry.getMetricsAsJSON();
      const body = pool ? await pool.metrics(own) : await registry.metrics();
      return { contentType: registry.contentType, body };
    },
  });
  // --- Sessions and the cluster (issue 4): the session store (memory or Redis), this node's
  // registry entry and heartbeat, the sweeper, the session API routes, and the release of TURN
  // allocations whenever a session closes anywhere in the cluster.
  const sessions: SessionServices = await startSessionServices({
    config, log, http,
    load: loadNow,
    releaseSession: (sessionId) => {
      pool?.broadcast({ t: 'release-session', sessionId });
      local?.releaseSession(sessionId);
    },
  });
  turnSessions.set(storeSessionLookup(sessions.store));
  usageSink.record = (batch) => sessions.usage.record(batch);
  // --- end sessions

  // --- Peer policy (issue 10): the cluster's other TURN nodes' relay ports are peers for every
  // worker (src/turn/peerPolicy.ts); the view is re-read at the heartbeat's pace.
  let relaysSent = '[]';
  const relaySync = setInterval(() => {
    const relays = remoteRelays(sessions.membership.nodes(), config.nodeId);
    const json = JSON.stringify(relays);
    if (json === relaysSent) return;
    relaysSent = json;
    turnHooks.setRemoteRelays?.(relays);
    local?.setRemoteRelays(relays);
  }, config.heartbeatIntervalSec * 1000);
  relaySync.unref();
  // --- end peer policy

  // --- MQTT signaling (issue 5): the embedded broker (TCP --mqtt, WebSocket /mqtt) or the service
  // client of --mqtt-url, session requests over MQTT, and device presence for the session API.
  let signaling: SignalingRole | undefined;
  if (config.roles.has('signal')) {
    signaling = await startSignaling({ config, log, http, store: sessions.store, createSession: sessions.createSession });
    sessions.setDevicePresence((id) => signaling?.isDeviceOnline(id));
    const waker = signaling.service.waker;
    if (waker) sessions.setDeviceWaker((id) => waker.wake(id));
    const service = signaling.service;
    sessions.onSessionCreated((forDevice, offer) => { void service.announce(forDevice, offer); });
  }
  // --- end signaling

  // --- Client side (issue 6): development tokens (only with a generated --jwt-secret, i.e. the
  // embedded development default, for loopback callers unless --dev-tokens lan; see
  // src/api/devToken.ts) and the web viewer at `/`.
  if (config.roles.has('api')) {
    const reach = config.jwtSecretGenerated && config.devTokens !== 'off' ? config.devTokens : undefined;
    if (reach) registerDevTokenRoute(http, { secret: config.jwtSecret, log, reach });
    registerWebRoutes(http, { log, devTokens: (ip) => reach !== undefined && devTokenAllowed(reach, ip) });
  }
  // --- end client side

  if (config.roles.has('api') || config.roles.has('signal') || packetRoles) {
    await http.listen({ host: config.http.host, port: config.http.port });
  }
  const addr = http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  const httpUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ http: httpUrl, stun: `${config.listen}:${config.port}`, workers: pool ? config.workers : 1, roles: [...config.roles] }, 'p2pd ready');

  const drainer = new Drain({
    membership: sessions.membership,
    setAlternate: (alt) => {
      turnHooks.setAlternate?.(alt);
      local?.setAlternate(alt);
    },
    allocations: async () => (await loadNow()).allocations,
    moveClients: () => signaling?.moveClients((id) => signalingServers(sessions.membership.nodes(), id, config.region)) ?? 0,
    clients: () => signaling?.clientCount ?? 0,
    graceSec: config.drainGraceSec,
    intervalMs: config.heartbeatIntervalSec * 1000,
    log,
  });

  return {
    http,
    httpUrl,
    drain: () => {
      draining = true;
      void drainer.start();
    },
    reload: () => {
      if (tlsReloader) tlsReloader.reload('SIGHUP');
      else log.info('SIGHUP: nothing to reload (no TURN TLS listener)');
    },
    settled: () => drainer.settled(),
    async stop() {
      draining = true;
      tlsReloader?.stop();
      clearInterval(relaySync);
      drainer.stop();
      await sessions.drain();
      await signaling?.stop();
      await http.close();
      await sessions.stop();
      await pool?.stop();
      await local?.stop();
      await rateLimits.close();
    },
  };
}
