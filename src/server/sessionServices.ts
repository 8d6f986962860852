/**
 * Sessions and the cluster on one node, put together from the configuration: the session store
 * (memory, or Redis / Redis Cluster with --redis-url), the node registry and this node's
 * heartbeat, the region resolver, the sweeper, the release of TURN allocations when a session
 * closes anywhere, relay usage per app and device (the usage store and its recorder), and (with
 * the `api` role) the session and usage API routes. node.ts starts it once.
 */
import type { FastifyInstance } from 'fastify';
import { advertisedHost, advertisedSignalUrls } from '../config/advertised.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { createVerifier, type TokenVerifier } from '../auth/token.ts';
import { sessionRoutes } from '../api/sessions.ts';
import { Membership } from '../cluster/membership.ts';
import { ownAddresses } from '../turn/ownAddresses.ts';
import type { NodeLoad } from '../cluster/nodeInfo.ts';
import { loadRegionMap, RegionResolver } from '../cluster/region.ts';
import { MemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from '../cluster/registry.ts';
import { clusterView, type ClusterView } from '../cluster/view.ts';
import { setSessionsActiveSource } from '../metrics/metrics.ts';
import { sessionActions, type SessionActions, type SessionActionsOptions, type SessionAnswer, type SessionOffer } from '../session/actions.ts';
import { MemorySessionStore } from '../session/memoryStore.ts';
import type { Session, SessionUpdate } from '../session/model.ts';
import { RedisSessionStore } from '../session/redisStore.ts';
import { onSessionClosed, type SessionStore } from '../session/store.ts';
import { SessionSweeper } from '../session/sweeper.ts';
import { deviceOffline } from '../errors.ts';
import { usageRoutes } from '../api/usage.ts';
import { MemoryUsageStore } from '../session/usageMemory.ts';
import { RedisUsageStore } from '../session/usageRedis.ts';
import { UsageRecorder } from '../session/usageRecorder.ts';
import type { UsageStore } from '../session/usageStore.ts';

export interface SessionServicesOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The node's HTTP server, before it listens: the session API registers on it (api role). */
  readonly http?: FastifyInstance | undefined;
  /** This node's TURN load now, for its heartbeat. */
  readonly load: () => Promise<NodeLoad>;
  /** Releases a session's TURN allocations on this node (called for every session that closes). */
  readonly releaseSession: (sessionId: string) => void;
  /** Token verifier for the API (built from the configuration when absent). */
  readonly verifier?: TokenVerifier;
  /** How long start waits for Redis before going on unready (default 5 s). */
  readonly storeWaitMs?: number;
}

export interface SessionServices {
  readonly store: SessionStore;
  readonly membership: Membership;
  readonly cluster: ClusterView;
  readonly sweeper: SessionSweeper;
  /** Takes what the TURN relay metered per session (docs/operations.md "Usage"). */
  readonly usage: UsageRecorder;
  /** For /readyz: why the node is not ready, or undefined. */
  unready(): string | undefined;
  /**
   * Opens a session exactly as `POST /v1/sessions` does (token allows the device, presence, TURN
   * node by HRW, STUN nearest first, iceServers with TURN REST credentials): signaling's
   * `session` request uses it. `ip` places the caller in a region (the node's own otherwise).
   */
  readonly createSession: SessionActions['create'];
  /**
   * Listens for sessions opened on this node, each presented to its device (ICE servers minted
   * for the device, in the node's own region): signaling announces them (docs/signaling.md
   * "Session notices").
   */
  onSessionCreated(listener: (forDevice: SessionAnswer, offer: SessionOffer | undefined) => void): () => void;
  /** Signaling hands in device presence (false = offline → DEVICE_OFFLINE on create). */
  setDevicePresence(isDeviceOnline: (deviceId: string) => boolean | undefined): void;
  /** Signaling hands in its waker of sleeping devices (--wake-timeout): creation waits for an offline device. */
  setDeviceWaker(wake: NonNullable<SessionActionsOptions['wakeDevice']>): void;
  /** Listens for sessions closing anywhere in the cluster. */
  onSessionClosed(listener: (u: SessionUpdate) => void): () => void;
  /** Takes no new sessions (marks the node draining in the registry). */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSessionServices(opts: SessionServicesOptions): Promise<SessionServices> {
  const { config, log } = opts;
  const waitMs = opts.storeWaitMs ?? 5000;
  let store: SessionStore;
  let registry: NodeRegistry;
  let usageStore: UsageStore;
  if (config.redisUrls.length > 0) {
    const redisStore = new RedisSessionStore({ urls: config.redisUrls, log });
    const redisRegistry = new RedisNodeRegistry({ urls: config.redisUrls, log });
    const [storeUp, registryUp] = await Promise.all([redisStore.ready(waitMs), redisRegistry.ready(waitMs)]);
    if (!storeUp || !registryUp) log.error({ redis: config.redisUrls.length > 1 ? 'cluster' : 'single' }, 'redis not reachable at start; not ready until it is');
    store = redisStore;
    registry = redisRegistry;
    usageStore = new RedisUsageStore({ client: redisStore.client, retentionDays: config.usageRetentionDays });
  } else {
    store = new MemorySessionStore({ log });
    registry = new MemoryNodeRegistry();
    usageStore = new MemoryUsageStore({ retentionDays: config.usageRetentionDays });
  }
  const usage = new UsageRecorder({ sessions: store, usage: usageStore, log });

  const regions = await RegionResolver.open({
    defaultRegion: config.region,
    regionMap: config.regionMapFile === undefined ? undefined : loadRegionMap(config.regionMapFile),
    geoipDb: config.geoipDb,
  });
  const membership = new Membership({
    registry,
    heartbeatMs: config.heartbeatIntervalSec * 1000,
    load: opts.load,
    log,
    self: {
      id: config.nodeId,
      region: config.region,
      roles: [...config.roles],
      host: advertisedHost(config),
      port: config.port,
      tlsPort: config.tls?.port,
      alt: config.alt ? { host: config.alt.ip, port: config.alt.port } : undefined,
      tlsHost: config.tls?.host,
      relay: config.roles.has('turn')
        ? { addresses: ownAddresses(config).relay.flat(), minPort: config.relayPorts.min, maxPort: config.relayPorts.max }
        : undefined,
      signal: config.roles.has('signal') ? advertisedSignalUrls(config) : undefined,
      capacity: { allocations: config.maxAllocations, bps: config.turnCapacityBps },
    },
  });
  await membership.start();
  const cluster = clusterView(membership, regions);

  // Every node hears every close; the one holding the allocations frees them (others find none).
  const offRelease = config.roles.has('turn')
    ? onSessionClosed(store, (u) => {
      log.debug({ sessionId: u.sessionId, reason: u.reason }, 'session closed: releasing its TURN allocations');
      opts.releaseSession(u.sessionId);
    })
    : () => undefined;

  const sweeper = new SessionSweeper({ store, intervalMs: config.sweepIntervalSec * 1000, log });
  sweeper.start();

  setSessionsActiveSource(() => store.countOpen());

  let isDeviceOnline: ((deviceId: string) => boolean | undefined) | undefined;
  let wakeDevice: SessionActionsOptions['wakeDevice'];
  const createdListeners = new Set<(forDevice: SessionAnswer, offer: SessionOffer | undefined) => void>();
  const announce = (s: Session, offer: SessionOffer | undefined): boolean => {
    if (createdListeners.size === 0) return false;
    actions.present(s, undefined, s.deviceId).then((forDevice) => {
      for (const l of createdListeners) l(forDevice, offer);
    }, (err: unknown) => log.warn({ err, sessionId: s.sessionId }, 'could not present a new session to its device'));
    return true;
  };
  const apiOptions = {
    store, cluster, log,
    verifier: opts.verifier ?? await createVerifier({ secret: config.jwtSecret, previousSecret: config.jwtSecretPrevious, publicKeyPem: config.jwtPublicKeyPem }),
    authSecret: config.authSecret,
    sessionTtlSec: config.sessionTtlSec,
    maxSessionsPerApp: config.maxSessionsPerApp,
    maxViewers: config.maxViewers,
    isDeviceOnline: (id: string) => isDeviceOnline?.(id),
    wakeDevice: (id: string) => (wakeDevice ? wakeDevice(id) : Promise.reject(deviceOffline(id))),
    onCreated: announce,
  };
  const actions = sessionActions(apiOptions);
  if (opts.http && config.roles.has('api')) {
    await opts.http.register(sessionRoutes, apiOptions);
    await opts.http.register(usageRoutes, { usage: usageStore, verifier: apiOptions.verifier });
  }
  log.info({ nodeId: config.nodeId, region: config.region, store: config.redisUrls.length === 0 ? 'memory' : config.redisUrls.length > 1 ? 'redis-cluster' : 'redis' }, 'sessions ready');

  let stopped = false;
  return {
    store,
    membership,
    cluster,
    sweeper,
    usage,
    unready: () => (store.healthy && registry.healthy ? undefined : 'session store unavailable'),
    createSession: (req) => actions.create({ claims: req.claims, deviceId: req.deviceId, ip: req.ip }),
    onSessionCreated: (listener) => {
      createdListeners.add(listener);
      return () => createdListeners.delete(listener);
    },
    setDevicePresence: (fn) => { isDeviceOnline = fn; },
    setDeviceWaker: (fn) => { wakeDevice = fn; },
    onSessionClosed: (listener) => onSessionClosed(store, listener),
    drain: () => membership.drain(),
    async stop() {
      if (stopped) return;
      stopped = true;
      setSessionsActiveSource(undefined);
      offRelease();
      await sweeper.stop();
      await usage.stop();
      await membership.stop();
      await Promise.all([store.shutdown(), registry.shutdown()]);
    },
  };
}
