/**
 * The STUN/TURN roles of one process: the front door and, with the TURN role, the relay. Runs in
 * each worker process, or in the primary itself when --workers is 1.
 */
import cluster from 'node:cluster';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { StunServer } from './stunServer.ts';
import type { PrimaryToWorker, WorkerStats, WorkerToPrimary } from './ipc.ts';
import type { WorkerPoolOptions } from './workers.ts';
import type { SessionStore } from '../session/store.ts';
import { TurnServer, type AlternateServer } from '../turn/server.ts';
import { ownAddresses, relayAddresses } from '../turn/ownAddresses.ts';
import { TurnAuthenticator, nonceKeyFrom } from '../turn/auth.ts';
import { AuthLimiter, serveAuthFailures } from '../turn/authLimiter.ts';
import { countTurnEvents, foldForwardedAtScrape, turnRelayCounters } from './turnMetrics.ts';
import { UsageMeter, type RelayUsage } from '../turn/usageMeter.ts';
import { Reservations, type ReservationLimits } from '../turn/reservations.ts';
import { PeerPolicy, type RemoteRelay } from '../turn/peerPolicy.ts';
import { applyLivePorts, LivePortFeed } from '../turn/livePorts.ts';
import {
  IpcReservationClient, LocalReservationClient, SessionGate, serveReservations, type ReservationClient, type SessionLookup,
} from '../turn/reservationClient.ts';

export interface PacketRoles {
  stats(): WorkerStats;
  releaseSession(sessionId: string): void;
  /** The cluster's other TURN nodes (their relay ports are peers: peerPolicy.ts). */
  setRemoteRelays(relays: readonly RemoteRelay[]): void;
  /** A reloaded TLS certificate and key for new connections (tlsReload.ts); throws when they do not load. */
  setTlsCredentials(cert: Buffer, key: Buffer): void;
  /** Where new allocations go while the node drains (turn/server.ts setAlternate). */
  setAlternate(alt: AlternateServer | undefined): void;
  stop(): Promise<void>;
}

/**
 * `sessions` is where the primary's session store is plugged in once it runs (Allocates of a
 * closed session's credentials get 401); a worker asks the primary instead. `onUsage` gets what
 * the relay metered per session (docs/operations.md "Usage"); a worker sends it to the primary.
 */
export async function startPacketRoles(
  config: Config, log: Logger, reusePort: boolean, sessions?: SessionGate, onUsage?: (batch: RelayUsage[]) => void,
): Promise<PacketRoles> {
  const stun = new StunServer(config, log);
  let turn: TurnServer | undefined;
  let peers: PeerPolicy | undefined;
  let meter: UsageMeter | undefined;
  if (config.roles.has('turn')) {
    const inWorker = cluster.isWorker;
    peers = new PeerPolicy(config.allowPeers, config.denyPeers, ownAddresses(config));
    // The policies are built here and handed in (turn/server.ts): credentials, failure budget, peers, book.
    turn = new TurnServer({
      auth: new TurnAuthenticator({
        realm: config.realm,
        authSecret: config.authSecret,
        previousAuthSecret: config.authSecretPrevious,
        users: config.users,
        nonceKey: nonceKeyFrom(config.authSecret),
        nonceLifetimeSec: config.nonceLifetimeSec,
      }),
      authLimiter: new AuthLimiter(),
      relays: relayAddresses(config),
      maxLifetimeSec: config.maxLifetimeSec,
      permissionLifetimeSec: config.permissionLifetimeSec,
      channelLifetimeSec: config.channelLifetimeSec,
      maxBps: config.maxBps,
      peers,
      maxPermissions: config.maxPermissions,
      maxChannels: config.maxChannels,
      closedSessionTtlSec: config.sessionTtlSec,
      reservations: reservationClient(config, peers, sessions),
      udpIo: config.udpIo,
      log,
      relayCounters: turnRelayCounters(),
      // The failure budget is the node's: the primary counts, and tells every worker to block.
      onAuthFailure: inWorker ? (ip) => { if (process.connected) process.send?.({ t: 'turn-auth-failure', ip } satisfies WorkerToPrimary); } : undefined,
    });
    if (inWorker) {
      const t = turn;
      process.on('message', (m: PrimaryToWorker) => {
        if (typeof m !== 'object' || m === null) return;
        if (m.t === 'turn-auth-block') t.blockSource(m.ip, m.untilSec);
        else if (m.t === 'turn-alternate') t.setAlternate(m.alternate);
      });
    }
    countTurnEvents(turn.events);
    const counted = turn;
    foldForwardedAtScrape(() => counted.collectForwarded());
    meter = new UsageMeter({
      events: turn.events,
      sink: inWorker ? (batch) => { if (process.connected) process.send?.({ t: 'turn-usage', batch } satisfies WorkerToPrimary); } : (batch) => onUsage?.(batch),
    });
    meter.start();
    stun.setTurnHandler(turn);
    turn.start();
  }
  await stun.start(reusePort);
  return {
    stats: () => turn?.stats() ?? { allocations: 0, bps: 0 },
    releaseSession: (sessionId) => { turn?.releaseSession(sessionId); },
    setRemoteRelays: (relays) => { peers?.setRemoteRelays(relays); },
    setTlsCredentials: (cert, key) => { stun.setTlsCredentials(cert, key); },
    setAlternate: (alt) => { turn?.setAlternate(alt); },
    stop: async () => {
      turn?.stop();
      meter?.stop();
      await stun.stop();
    },
  };
}

function reservationLimits(config: Config): ReservationLimits {
  return {
    minPort: config.relayPorts.min,
    maxPort: config.relayPorts.max,
    pools: relayAddresses(config).map((r) => r.family),
    maxAllocations: config.maxAllocations,
    userQuota: config.userQuota,
    principalQuota: config.principalQuota,
  };
}

/**
 * In a worker, relay ports and quotas are the primary's to hand out (one book for the node, so
 * --user-quota and --max-allocations hold across workers); otherwise the book is local.
 */
function reservationClient(config: Config, peers: PeerPolicy, sessions: SessionGate | undefined): ReservationClient {
  if (!cluster.isWorker) {
    return new LocalReservationClient(new Reservations(reservationLimits(config), (port, on) => peers.setLivePort(port, on)), sessions);
  }
  const send = (m: WorkerToPrimary): void => {
    if (process.connected) process.send?.(m);
  };
  const client = new IpcReservationClient(send);
  process.on('message', (m: PrimaryToWorker) => {
    if (typeof m !== 'object' || m === null) return;
    if (m.t === 'turn-reserved') client.onAnswer(m);
    else if (m.t === 'turn-live-ports') applyLivePorts(peers, m);
    else if (m.t === 'turn-cluster-relays') peers.setRemoteRelays(m.relays);
  });
  // Listening now: the snapshot that answers covers every change sent before.
  send({ t: 'turn-sync' });
  return client;
}

export interface TurnPrimaryHooks extends Pick<WorkerPoolOptions, 'onRequest' | 'onExit'> {
  /** The cluster's other TURN nodes changed: every worker is told. */
  readonly setRemoteRelays?: (relays: readonly RemoteRelay[]) => void;
  /** The node drains (or stops draining): every worker is told where new allocations go. */
  readonly setAlternate?: (alt: AlternateServer | undefined) => void;
}

/** What the TURN role asks the session store: has this session closed, and whose is it? */
export function storeSessionLookup(store: SessionStore): SessionLookup {
  return async (sessionId) => {
    const s = await store.get(sessionId);
    if (s === undefined) return { status: 'unknown' };
    return { status: s.status === 'closed' ? 'closed' : 'open', appId: s.appId };
  };
}

/**
 * For the primary's WorkerPool: the node's book of relay ports and quotas (checked against the
 * session store through `sessions`), its count of auth failures, and what the peer policy of
 * every worker needs from the primary (live relay ports, cluster relays), served to workers;
 * workers' usage reports go to `onUsage`.
 * `broadcast` reaches every worker (the pool, once it exists).
 */
export function turnPrimaryHooks(
  config: Config, sessions: SessionGate, broadcast: (m: PrimaryToWorker) => void, onUsage?: (batch: readonly RelayUsage[]) => void,
): TurnPrimaryHooks {
  if (!config.roles.has('turn')) return {};
  const feed = new LivePortFeed(broadcast, relayAddresses(config).length);
  const book = serveReservations(new Reservations(reservationLimits(config), feed.onChange), sessions);
  const failures = serveAuthFailures();
  setInterval(() => failures.sweep(), 1000).unref();
  let relays: readonly RemoteRelay[] = [];
  let alternate: AlternateServer | undefined;
  return {
    onRequest(workerId, m, reply) {
      if (m.t === 'turn-usage') onUsage?.(m.batch);
      else if (m.t === 'turn-auth-failure') failures.onFailure(m.ip, (ip, untilSec) => broadcast({ t: 'turn-auth-block', ip, untilSec }));
      else if (m.t === 'turn-sync') {
        reply(feed.snapshot());
        reply({ t: 'turn-cluster-relays', relays });
        if (alternate) reply({ t: 'turn-alternate', alternate });
      } else book.onRequest(workerId, m, reply);
    },
    onExit: (workerId) => book.onExit(workerId),
    setRemoteRelays(r) {
      relays = r;
      broadcast({ t: 'turn-cluster-relays', relays });
    },
    setAlternate(alt) {
      alternate = alt;
      broadcast({ t: 'turn-alternate', alternate });
    },
  };
}
