/**
 * The STUN/TURN roles of one process: the front door and, with the TURN role, the relay. Runs in
 * each worker process, or in the primary itself when --workers is 1.
 */
import cluster from 'node:cluster';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { StunServer } from './stunServer.ts';
import type { PrimaryToWorker, WorkerStats, WorkerToPrimary } from '../transport/ipc.ts';
import type { WorkerPoolOptions } from '../transport/workers.ts';
import type { SessionStore } from '../session/store.ts';
import { TurnServer, type RelayAddress } from '../turn/server.ts';
import { nonceKeyFrom } from '../turn/auth.ts';
import { serveAuthFailures } from '../turn/authLimiter.ts';
import { Reservations, type ReservationLimits } from '../turn/reservations.ts';
import {
  IpcReservationClient, LocalReservationClient, SessionGate, serveReservations, type ReservationClient, type SessionLookup,
} from '../turn/reservationClient.ts';

export interface PacketRoles {
  stats(): WorkerStats;
  releaseSession(sessionId: string): void;
  stop(): Promise<void>;
}

/**
 * `sessions` is where the primary's session store is plugged in once it runs (Allocates of a
 * closed session's credentials get 401); a worker asks the primary instead.
 */
export async function startPacketRoles(config: Config, log: Logger, reusePort: boolean, sessions?: SessionGate): Promise<PacketRoles> {
  const stun = new StunServer(config, log);
  let turn: TurnServer | undefined;
  if (config.roles.has('turn')) {
    const inWorker = cluster.isWorker;
    turn = new TurnServer({
      realm: config.realm,
      authSecret: config.authSecret,
      users: config.users,
      nonceKey: nonceKeyFrom(config.authSecret),
      nonceLifetimeSec: config.nonceLifetimeSec,
      ...relayAddresses(config),
      maxLifetimeSec: config.maxLifetimeSec,
      permissionLifetimeSec: config.permissionLifetimeSec,
      channelLifetimeSec: config.channelLifetimeSec,
      maxBps: config.maxBps,
      allowPeers: config.allowPeers,
      maxPermissions: config.maxPermissions,
      maxChannels: config.maxChannels,
      closedSessionTtlSec: config.sessionTtlSec,
      reservations: reservationClient(config, sessions),
      udpIo: config.udpIo,
      log,
      // The failure budget is the node's: the primary counts, and tells every worker to block.
      onAuthFailure: inWorker ? (ip) => { if (process.connected) process.send?.({ t: 'turn-auth-failure', ip } satisfies WorkerToPrimary); } : undefined,
    });
    if (inWorker) {
      const t = turn;
      process.on('message', (m: PrimaryToWorker) => {
        if (typeof m === 'object' && m !== null && m.t === 'turn-auth-block') t.blockSource(m.ip, m.untilSec);
      });
    }
    stun.setTurnHandler(turn);
    turn.start();
  }
  await stun.start(reusePort);
  return {
    stats: () => turn?.stats() ?? { allocations: 0, bps: 0 },
    releaseSession: (sessionId) => { turn?.releaseSession(sessionId); },
    stop: async () => {
      turn?.stop();
      await stun.stop();
    },
  };
}

function reservationLimits(config: Config): ReservationLimits {
  return {
    minPort: config.relayPorts.min,
    maxPort: config.relayPorts.max,
    maxAllocations: config.maxAllocations,
    userQuota: config.userQuota,
    principalQuota: config.principalQuota,
  };
}

/**
 * In a worker, relay ports and quotas are the primary's to hand out (one book for the node, so
 * --user-quota and --max-allocations hold across workers); otherwise the book is local.
 */
function reservationClient(config: Config, sessions: SessionGate | undefined): ReservationClient {
  if (!cluster.isWorker) return new LocalReservationClient(new Reservations(reservationLimits(config)), sessions);
  const client = new IpcReservationClient((m: WorkerToPrimary) => {
    if (process.connected) process.send?.(m);
  });
  process.on('message', (m: PrimaryToWorker) => {
    if (typeof m === 'object' && m !== null && m.t === 'turn-reserved') client.onAnswer(m);
  });
  return client;
}

/**
 * For the primary's WorkerPool: the node's book of relay ports and quotas (checked against the
 * session store through `sessions`) and its count of auth failures, served to workers.
 */
export function turnPrimaryHooks(config: Config, sessions: SessionGate): Pick<WorkerPoolOptions, 'onRequest' | 'onExit'> {
  if (!config.roles.has('turn')) return {};
  const book = serveReservations(new Reservations(reservationLimits(config)), sessions);
  const failures = serveAuthFailures();
  setInterval(() => failures.sweep(), 1000).unref();
  return {
    onRequest(workerId, m, reply, broadcast) {
      if (m.t === 'turn-auth-failure') failures.onFailure(m.ip, (ip, untilSec) => broadcast({ t: 'turn-auth-block', ip, untilSec }));
      else book.onRequest(workerId, m, reply);
    },
    onExit: (workerId) => book.onExit(workerId),
  };
}

/** What the TURN role asks the session store: has this session closed? */
export function storeSessionLookup(store: SessionStore): SessionLookup {
  return async (sessionId) => {
    const s = await store.get(sessionId);
    if (s === undefined) return 'unknown';
    return s.status === 'closed' ? 'closed' : 'open';
  };
}


/**
 * Where relay sockets bind and what XOR-RELAYED-ADDRESS says: --relay-ip (and --relay-ip6), told
 * to clients as --external-ip when that is set to a concrete address of the same family; a
 * wildcard bind is told as the host's first public-facing address of the family.
 */
function relayAddresses(config: Config): { relay4: RelayAddress | undefined; relay6: RelayAddress | undefined } {
  const v6 = (ip: string): boolean => ip.includes(':');
  const ip4 = v6(config.relayIp) ? undefined : config.relayIp;
  const ip6 = v6(config.relayIp) ? config.relayIp : config.relayIp6;
  const ext = config.externalIp;
  const advertise = (bind: string, family: 4 | 6): string | undefined => {
    const wildcard = bind === '0.0.0.0' || bind === '::';
    if (v6(ext) === (family === 6) && ext !== '0.0.0.0' && ext !== '::' && (wildcard || ext !== config.listen)) return ext;
    return wildcard ? hostAddress(family) : bind;
  };
  const make = (bind: string | undefined, family: 4 | 6): RelayAddress | undefined => {
    if (bind === undefined) return undefined;
    const advertised = advertise(bind, family);
    return advertised === undefined ? undefined : { bind, advertised };
  };
  return { relay4: make(ip4, 4), relay6: make(ip6, 6) };
}

function hostAddress(family: 4 | 6): string | undefined {
  const all = Object.values(networkInterfaces()).flat().filter((i) => i !== undefined);
  const ofFamily = all.filter((i) => i.family === (family === 4 ? 'IPv4' : 'IPv6') && !(family === 6 && i.address.startsWith('fe80')));
  return (ofFamily.find((i) => !i.internal) ?? ofFamily[0])?.address;
}
