/**
 * The embedded MQTT broker (aedes) of a one-machine p2pd: MQTT over TCP on `--mqtt` and over
 * WebSocket at `/mqtt` on the HTTP server. Policy is handed in: tokens are checked by
 * a TokenVerifier, topic rights come from signaling/acl.ts, and every publish passes the
 * signaling gate before aedes forwards it.
 *
 * Login (docs/signaling.md): username = the token's `sub`, password = the token. The client
 * identifier is free, but one that a connection (or a persistent session) of another username
 * holds is refused (CONNACK 2, "identifier rejected"): MQTT's takeover would otherwise let anyone
 * disconnect anyone. The same username reusing its id keeps the takeover of MQTT 3.1.1 §3.1.4.
 * Rights follow the username only. A connection is closed when its token expires.
 *
 * Before login a stranger holds little: the fixed-header guard (packetGuard.ts) cuts a CONNECT
 * above 16 KiB and any packet above `maxPacketBytes`, one source holds at most
 * `preauthPerSource` connections not logged in, and aedes' connect timeout ends the rest.
 *
 * A node holds at most `maxConnections` MQTT connections (docs/signaling.md "Connections per
 * node"): a login beyond them gets CONNACK 3 and its client moves to its next node, and a socket
 * beyond them and a margin for those refusals is closed at once, so that a full node keeps the
 * files its Redis connections need.
 *
 * A node takes at most `maxLoginsInFlight` logins at once, from CONNECT to CONNACK (loginGate.ts),
 * so that the clients of a dead node, all arriving together, do not queue their commands in Redis
 * past its timeout; a login beyond them waits its turn (at most `maxLoginsWaiting`, each at most
 * `loginWaitMs`, then CONNACK 3), and a CONNECT beyond those is refused at once with CONNACK 3
 * (docs/signaling.md "Logins in flight"). A login not answered within `loginTimeoutMs` is closed.
 *
 * With a `fabric` (fabric.ts) the brokers of all nodes are one: aedes' bus and store are Redis,
 * client ids are leased across nodes (clientIds.ts), and every node hears every device's presence
 * (docs/signaling.md "One broker across nodes"). Every check above still runs at the node where
 * a client is connected, before its publish enters the fabric.
 */
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { ClientClaims, TokenVerifier } from '../auth/token.ts';
import type { SignalingServer } from '../cluster/signalingServers.ts';
import type { HostPort } from '../config/values.ts';
import type { Logger } from '../log.ts';
import { mqttClientsConnected, mqttConnectionsRefusedTotal, mqttLoginsInFlight, mqttLoginsWaiting, mqttMaxConnections } from '../metrics/metrics.ts';
import { aclRules, maySubscribe } from '../signaling/acl.ts';
import { serverError } from '../signaling/message.ts';
import type { Sender, SignalingPublisher } from '../signaling/service.ts';
import { PRESENCE_ONLINE, PRESENCE_PREFIX, SERVER_ID, ownTopic, parseTopic, presenceTopic } from '../signaling/topics.ts';
import type { BrokerFabric } from './fabric.ts';
import type { Lease } from './clientIds.ts';
import { LoginGate } from './loginGate.ts';
import { PacketGuard } from './packetGuard.ts';
import { PreauthLimiter } from './preauth.ts';
import { attachWebSocket } from './websocket.ts';

/** What the broker asks the signaling service. */
export interface PublishGate {
  /** Decides on one publish of an authenticated client; false drops it. Must not throw. */
  authorizePublish(sender: Sender, topic: string, payload: Buffer, retain: boolean): Promise<boolean>;
  /** A presence message published by the broker itself (a will of an already gone client). */
  observe(topic: string, payload: Buffer): Promise<void>;
  /** The device's last connection closed; its presence may still say online. */
  markOffline(deviceId: string): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  readonly verifier: TokenVerifier;
  readonly gate: PublishGate;
  readonly log: Logger;
  /** TCP listener (`--mqtt`); none when undefined. */
  readonly tcp?: HostPort;
  /** HTTP server to serve MQTT over WebSocket on. */
  readonly http?: HttpServer;
  readonly wsPath?: string;
  /** Grace before a device whose connections all closed is marked offline (a quick reconnect keeps it online). */
  readonly offlineGraceMs?: number;
  /** Largest Remaining Length of a packet (`--mqtt-max-packet`); the CONNECT has its own, smaller cap. */
  readonly maxPacketBytes?: number;
  /** Connections per source not logged in yet (`--mqtt-preauth-per-source`). */
  readonly preauthPerSource?: number;
  /** Connections held at once (`--mqtt-max-connections`); 0 or undefined = unbounded. */
  readonly maxConnections?: number;
  /** Logins (CONNECT to CONNACK) under way at once (`--mqtt-max-logins-in-flight`); 0 = unbounded. */
  readonly maxLoginsInFlight?: number;
  /** Logins that may wait for one of them (`--mqtt-max-logins-waiting`); 0 = a login beyond them is refused at once. */
  readonly maxLoginsWaiting?: number;
  /** The longest a login waits for one of them, ms (`--mqtt-login-wait`). */
  readonly loginWaitMs?: number;
  /** With a fabric: the brokers' heartbeat, ms (the cluster's `--heartbeat-interval`). */
  readonly fabricHeartbeatMs?: number;
  /** A login without its CONNACK this long after its CONNECT is closed, ms (default: the connect timeout). */
  readonly loginTimeoutMs?: number;
  /** The Redis fabric that joins this broker to the other nodes' (fabric.ts); one node alone without. */
  readonly fabric?: BrokerFabric;
}

export interface EmbeddedBroker extends SignalingPublisher {
  /** The bound TCP port (useful with port 0), undefined without a TCP listener. */
  readonly tcpPort: number | undefined;
  /** Live authenticated connections of one app or device id. */
  connectionsOf(id: string): number;
  /** Live authenticated connections, all ids. */
  readonly clientCount: number;
  /** Logins under way now (CONNECT received, CONNACK not yet sent). */
  readonly loginsInFlight: number;
  /**
   * The node drains (docs/signaling.md "Draining"): each logged-in client gets an `error`
   * NODE_DRAINING from `server` on its own topic, listing the nodes to move to (`listFor` its
   * id), and new logins are refused with CONNACK 3 from now on, so a client that comes back
   * here moves on to its next URL. Returns how many clients were told.
   */
  moveClients(listFor: (id: string) => readonly SignalingServer[]): number;
  readonly aedes: Aedes;
  close(): Promise<void>;
}

/** Where refused publishes go: acknowledged (QoS 1 needs its PUBACK) but routed to no one. */
const DROP_TOPIC = '$p2pd/dropped';
const EMPTY = Buffer.alloc(0);

/** A CONNECT carries an id, a will and a token: a few KiB at most. */
export const MAX_CONNECT_BYTES = 16 * 1024;
const DEFAULT_MAX_PACKET_BYTES = 256 * 1024;
const DEFAULT_PREAUTH_PER_SOURCE = 32;
/**
 * docs/signaling.md "Logins in flight": a login's ~16 Redis commands go in ~6 steps, 1–3 waiting
 * at a time. On the 2-core bench machine the fabric did 115–300 logins a second (1,800–4,800
 * commands): five nodes × 64 logins keep 320–960 commands waiting, 0.1–0.5 s of that, well inside
 * the 2 s command timeout (256 would reach it). A healthy login takes milliseconds, so 64 still
 * admits thousands a second per node.
 */
const DEFAULT_MAX_LOGINS_IN_FLIGHT = 64;
/**
 * docs/signaling.md "Logins in flight": a dead node's clients wait at the others rather than
 * come back after a backoff. 4,096 waiting hold a few MiB; 4 s leaves the SDK (8 s to its
 * CONNACK) time for the login itself.
 */
const DEFAULT_MAX_LOGINS_WAITING = 4096;
const DEFAULT_LOGIN_WAIT_MS = 4000;
/** The cluster's default heartbeat (`--heartbeat-interval` 5 s). */
const DEFAULT_FABRIC_HEARTBEAT_MS = 5000;
/** aedes' time from connect to CONNECT; a login has as long from CONNECT to CONNACK. */
const CONNECT_TIMEOUT_MS = 10_000;
/** setTimeout's longest delay; a longer token is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Client ids of persistent sessions remembered with their username (beyond: the oldest is forgotten). */
const PERSISTENT_OWNERS_MAX = 200_000;

// CONNACK return codes of MQTT 3.1.1 §3.2.2.3.
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** CONNACK 3: this node holds its `--mqtt-max-connections` (docs/signaling.md "Connections per node"). */
function fullError(): AuthenticateError {
  return authError('this node holds as many connections as it takes: connect to another', SERVER_UNAVAILABLE);
}

/**
 * Sockets beyond `maxConnections` that are let in only to be refused with CONNACK 3 (a client
 * told "unavailable" moves on at once; one whose socket just closed backs off as from a dead
 * node): a 32nd of the bound, at least 64. Beyond those a socket is closed at its accept.
 */
const overBoundMargin = (maxConnections: number): number => Math.max(64, Math.ceil(maxConnections / 32));

/** CONNACK 3: this node has its logins in flight and waiting (docs/signaling.md "Logins in flight"). */
function busyError(): AuthenticateError {
  return authError('too many logins under way on this node: retry after a backoff, or another node', SERVER_UNAVAILABLE);
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log.child({ role: 'broker' });
  const senders = new WeakMap<Client, Sender>();
  /** Publishes of one connection are decided in order (aedes handles a read chunk concurrently). */
  const chains = new WeakMap<Client, Promise<unknown>>();
  const connections = new Map<string, number>();
  const offlineGraceMs = opts.offlineGraceMs ?? 1000;
  const { gate, verifier, fabric } = opts;
  /** The fabric-wide hold of each connection on its client id. */
  const leases = new WeakMap<Client, Lease>();
  const maxPacketBytes = opts.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  const preauth = new PreauthLimiter(opts.preauthPerSource ?? DEFAULT_PREAUTH_PER_SOURCE);
  /** The pre-login slot of each connection (keyed by the guard aedes sees as `client.conn`). */
  const preauthSlots = new WeakMap<Duplex, () => void>();
  const logins = new LoginGate({
    maxInFlight: opts.maxLoginsInFlight ?? DEFAULT_MAX_LOGINS_IN_FLIGHT,
    maxWaiting: opts.maxLoginsWaiting ?? DEFAULT_MAX_LOGINS_WAITING,
    maxWaitMs: opts.loginWaitMs ?? DEFAULT_LOGIN_WAIT_MS,
  });
  const loginTimeoutMs = opts.loginTimeoutMs ?? CONNECT_TIMEOUT_MS;
  /** Each login under way: `answered` at its CONNACK (its deadline is over), `end` frees its slot. */
  const loginsUnderWay = new WeakMap<Client, { readonly answered: () => void; readonly end: () => void }>();
  /** Client id → the live (or logging-in) connection holding it. */
  const idHolders = new Map<string, { readonly username: string; readonly client: Client }>();
  /** Client id → username of a persistent (clean = false) session, which outlives its connection. */
  const persistentOwners = new Map<string, string>();
  const expiryTimers = new WeakMap<Client, NodeJS.Timeout>();
  /** Connections being closed because their token expired: their will is not published. */
  const expiring = new WeakSet<Client>();
  /** Set by moveClients(): the node drains and sends its clients elsewhere. */
  let moving = false;
  /** Logged-in connections (moveClients tells each). */
  const live = new Set<Client>();
  const maxConnections = opts.maxConnections ?? 0;
  mqttMaxConnections.set(maxConnections);
  /** MQTT sockets open, TCP and WebSocket, logged in or not. */
  let sockets = 0;
  /** Logged in, and logging in: what a new login would be counted with. */
  const full = (): boolean => maxConnections > 0 && live.size + logins.inFlight + logins.queued >= maxConnections;

  /** Another username holds this client id (a connection, or a persistent session). */
  const idTakenByOther = (clientId: string, username: string): boolean => {
    const holder = idHolders.get(clientId);
    if (holder !== undefined && !holder.client.closed && holder.username !== username) return true;
    const owner = persistentOwners.get(clientId);
    return owner !== undefined && owner !== username;
  };
  const holdId = (client: Client, username: string): void => {
    idHolders.set(client.id, { username, client });
    // Across nodes the fabric's leases keep persistent sessions' ids, and forget them at expiry.
    if (fabric !== undefined) return;
    if (!client.clean) {
      persistentOwners.delete(client.id);
      persistentOwners.set(client.id, username);
      if (persistentOwners.size > PERSISTENT_OWNERS_MAX) {
        const oldest = persistentOwners.keys().next();
        if (!oldest.done) persistentOwners.delete(oldest.value);
      }
    } else {
      // A clean session discards the stored one (MQTT 3.1.1 §3.1.2.4).
      persistentOwners.delete(client.id);
    }
  };
  /** Closes the connection when the token expires (a timer per connection, cleared on close). */
  const armExpiry = (client: Client, expMs: number): void => {
    const delayMs = Math.min(Math.max(0, expMs - Date.now()), MAX_TIMER_MS);
    const timer = setTimeout(() => {
      if (client.closed) return;
      if (Date.now() < expMs) {
        armExpiry(client, expMs);
        return;
      }
      mqttConnectionsRefusedTotal.inc({ reason: 'token_expired' });
      expiring.add(client);
      client.close();
    }, delayMs);
    timer.unref();
    expiryTimers.set(client, timer);
  };
  const loggedIn = (client: Client, sender: Sender): void => {
    const conn = client.conn as unknown as Duplex;
    preauthSlots.get(conn)?.();
    holdId(client, sender.id);
    armExpiry(client, sender.claims.exp * 1000);
    conn.once('close', () => {
      const timer = expiryTimers.get(client);
      if (timer !== undefined) clearTimeout(timer);
      if (idHolders.get(client.id)?.client === client) idHolders.delete(client.id);
      leases.get(client)?.release().catch((err: unknown) => log.warn({ err, client: client.id }, 'could not release a client id lease'));
    });
  };

  /**
   * A login's turn for `client` (loginGate.ts): a slot now or a place among those waiting for one,
   * until the login is done (aedes' `clientReady`: the CONNACK is out and the session's queue
   * read), it is refused, or its connection ends; a login without its CONNACK `loginTimeoutMs`
   * after the CONNECT is closed. Undefined (counted) while the node has its maximum in flight and
   * waiting. `granted` is false for a login that waited `--mqtt-login-wait` (counted).
   */
  const beginLogin = (client: Client): { readonly granted: Promise<boolean>; readonly end: () => void } | undefined => {
    const turn = logins.enter();
    if (turn === undefined) {
      mqttConnectionsRefusedTotal.inc({ reason: 'logins_in_flight' });
      return undefined;
    }
    let ended = false;
    let holding = !turn.waits;
    if (holding) mqttLoginsInFlight.inc();
    else mqttLoginsWaiting.inc();
    // The gate settles a waiting turn once: with a slot, or without one (waited too long, or ended).
    const granted = holding ? turn.granted : turn.granted.then((ok) => {
      mqttLoginsWaiting.dec();
      if (ended) return false;
      if (!ok) {
        mqttConnectionsRefusedTotal.inc({ reason: 'login_wait' });
        return false;
      }
      holding = true;
      mqttLoginsInFlight.inc();
      return true;
    });
    const conn = client.conn as unknown as Duplex;
    const timer = setTimeout(() => {
      // No client waits this long for its CONNACK (the SDK gives up after 8 s): the slot is for one that does.
      // (Once the CONNACK is out the connection is up: it is never closed for a slow queue read.)
      mqttConnectionsRefusedTotal.inc({ reason: 'login_timeout' });
      log.debug({ client: client.id }, 'MQTT login not answered in time: closed');
      client.close();
    }, loginTimeoutMs);
    timer.unref();
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      conn.off('close', end);
      loginsUnderWay.delete(client);
      turn.end();
      if (holding) mqttLoginsInFlight.dec();
      holding = false;
    };
    loginsUnderWay.set(client, { answered: () => clearTimeout(timer), end });
    conn.once('close', end);
    if (conn.destroyed) end();
    return { granted, end };
  };

  /** Takes the client id on every node (fabric), or answers the CONNACK error that refuses it. */
  const claimAcrossNodes = async (client: Client, username: string): Promise<AuthenticateError | undefined> => {
    if (fabric === undefined) return undefined;
    let lease: Lease | undefined;
    try {
      lease = await fabric.leases.claim(client.id, username, !client.clean);
    } catch (err) {
      log.warn({ err }, 'client id lease: redis did not answer');
      return authError('the broker fabric is unavailable', SERVER_UNAVAILABLE);
    }
    if (lease === undefined) {
      mqttConnectionsRefusedTotal.inc({ reason: 'client_id_taken' });
      return authError('CLIENT_ID_TAKEN: another user holds this client identifier', IDENTIFIER_REJECTED);
    }
    if (client.closed) {
      void lease.release().catch(() => undefined);
      return authError('closed while logging in', SERVER_UNAVAILABLE);
    }
    leases.set(client, lease);
    return undefined;
  };

  const aedes = await Aedes.createBroker({
    connectTimeout: CONNECT_TIMEOUT_MS,
    drainTimeout: 30_000,
    concurrency: 1000,
    // Across nodes the heartbeat also says which brokers live: a dead node's wills go out after 3
    // missed beats, at the next check (every 4 beats; fabricWills.ts).
    heartbeatInterval: fabric === undefined ? 60_000 : opts.fabricHeartbeatMs ?? DEFAULT_FABRIC_HEARTBEAT_MS,
    ...(fabric === undefined ? {} : { mq: fabric.mq, persistence: fabric.persistence }),

    authenticate(client, username, password, answer) {
      if (username === undefined || password === undefined) {
        answer(authError('username (your id) and password (your token) are required', BAD_USERNAME_OR_PASSWORD), null);
        return;
      }
      if (moving) {
        mqttConnectionsRefusedTotal.inc({ reason: 'draining' });
        answer(authError('NODE_DRAINING: this node is stopping; connect to another', SERVER_UNAVAILABLE), null);
        return;
      }
      if (full()) {
        mqttConnectionsRefusedTotal.inc({ reason: 'max_connections' });
        answer(fullError(), null);
        return;
      }
      const turn = beginLogin(client);
      if (turn === undefined) {
        // Before the token check: a refusal here costs neither CPU nor Redis.
        answer(busyError(), null);
        return;
      }
      // A refusal ends the login now (only its CONNACK is left to send); a success at `clientReady`.
      let answered = false;
      const done: typeof answer = (err, ok) => {
        if (answered) return;
        answered = true;
        if (err !== null) turn.end();
        answer(err, ok);
      };
      // Waited `--mqtt-login-wait` for a slot: refused then, whether its token is checked yet or not.
      void turn.granted.then((ok) => { if (!ok && !client.closed) done(busyError(), null); });
      // The token is checked while the login waits for its slot: a bad one gives its place up at once.
      verifier.verify(password.toString('utf8')).then(async (claims: ClientClaims) => {
        if (answered) return;
        if (claims.sub !== username || claims.sub === SERVER_ID) {
          done(authError('username must be the token\'s subject', NOT_AUTHORIZED), null);
          return;
        }
        if (!await turn.granted || answered) return;
        if (client.closed) return;
        if (idTakenByOther(client.id, claims.sub)) {
          mqttConnectionsRefusedTotal.inc({ reason: 'client_id_taken' });
          done(authError('CLIENT_ID_TAKEN: another user holds this client identifier', IDENTIFIER_REJECTED), null);
          return;
        }
        return claimAcrossNodes(client, claims.sub).then((refused) => {
          if (refused !== undefined) {
            done(refused, null);
            return;
          }
          const sender: Sender = { id: claims.sub, role: claims.role, claims, rules: aclRules(claims) };
          senders.set(client, sender);
          loggedIn(client, sender);
          done(null, true);
        });
      }, (err: unknown) => {
        log.debug({ err, username }, 'MQTT login refused');
        done(authError((err as Error).message, BAD_USERNAME_OR_PASSWORD), null);
      });
    },

    authorizeSubscribe(client, sub, done) {
      const sender = senders.get(client);
      if (!sender) return done(new Error('not authenticated'));
      if (sender.claims.exp * 1000 <= Date.now()) return done(new Error('token expired'));
      // A refused filter is negated: SUBACK 0x80 for it, the connection stays.
      done(null, maySubscribe(sender.rules, sub.topic) ? sub : null);
    },

    authorizePublish(client, packet, done) {
      if (client === null) {
        // A will published after its client is gone: only a device's `offline` is expected.
        if (parseTopic(packet.topic)?.kind !== 'presence') return done(new Error('unexpected broker publish'));
        // A dead node's will, published by this node, while the device is online again through a
        // third node (it moved when its node died, docs/signaling.md "Finding a node"): stale.
        movedOn(packet.topic, (packet as { brokerId?: unknown }).brokerId).then((stale) => {
          if (stale) {
            divert(packet);
            return done(null);
          }
          return gate.observe(packet.topic, toBuffer(packet.payload)).then(() => done(null));
        }).catch(done);
        return;
      }
      const sender = senders.get(client);
      if (!sender) return done(new Error('not authenticated'));
      if (expiring.has(client) && packet === (client as unknown as { will?: unknown }).will) {
        // Closed at its token's expiry: not a crash. The offline grace decides if it is gone.
        divert(packet);
        return done(null);
      }
      const willOf = (packet as { brokerId?: unknown }).brokerId;
      if (typeof willOf === 'string' && willOf !== aedes.id) {
        // The will of a dead node's connection, while the client is connected here again: stale.
        divert(packet);
        return done(null);
      }
      // MQTT 3.1.1 cannot refuse one publish; closing the connection is aedes' only error path.
      if (sender.claims.exp * 1000 <= Date.now()) return done(new Error('token expired'));
      const decide = (): Promise<boolean> => gate.authorizePublish(sender, packet.topic, toBuffer(packet.payload), packet.retain);
      const previous = chains.get(client);
      const decision = previous === undefined ? decide() : previous.then(decide);
      chains.set(client, decision.catch(() => false));
      decision.then((ok) => {
        if (!ok) divert(packet);
        done(null);
      }, (err: unknown) => {
        log.error({ err, client: sender.id }, 'publish gate failed');
        divert(packet);
        done(null);
      });
    },

    authorizeForward(client, packet: AedesPublishPacket) {
      // Nothing reaches a connection whose token has expired, even before its timer fires.
      const sender = senders.get(client);
      if (sender !== undefined && sender.claims.exp * 1000 <= Date.now()) return null;
      return packet;
    },
  });

  /** Across nodes: the retained presence of `topic` is an `online` that came in through another broker than `brokerId`. */
  const movedOn = async (topic: string, brokerId: unknown): Promise<boolean> => {
    if (fabric === undefined || typeof brokerId !== 'string') return false;
    for await (const retained of fabric.persistence.createRetainedStream(topic)) {
      return retained.payload.toString('utf8') === PRESENCE_ONLINE && retained.brokerId !== undefined && retained.brokerId !== brokerId;
    }
    return false;
  };
  /**
   * Across nodes: the device's latest `online` came in through another broker (it moved there),
   * so this node's last connection closing says nothing. aedes stamps each packet with the id of
   * the broker it entered by, and the retained copy keeps it.
   */
  const onlineElsewhere = async (deviceId: string): Promise<boolean> => {
    if (fabric === undefined) return false;
    for await (const retained of fabric.persistence.createRetainedStream(presenceTopic(deviceId))) {
      return retained.payload.toString('utf8') === PRESENCE_ONLINE && retained.brokerId !== aedes.id;
    }
    return false;
  };
  if (fabric !== undefined) {
    // Every node hears every presence message, wherever its device is connected; first the
    // retained ones, so that this node knows the fleet before it takes its first client.
    const presenceFilter = `${PRESENCE_PREFIX}+`;
    await new Promise<void>((resolve) => {
      aedes.subscribe(presenceFilter, (packet: AedesPublishPacket, cb: () => void) => {
        gate.observe(packet.topic, toBuffer(packet.payload)).then(cb, cb);
      }, resolve);
    });
    for await (const retained of fabric.persistence.createRetainedStream(presenceFilter)) {
      await gate.observe(retained.topic, Buffer.from(retained.payload));
    }
  }

  const pendingOffline = new Map<string, NodeJS.Timeout>();
  aedes.on('client', (client) => {
    const sender = senders.get(client);
    if (!sender) return;
    connections.set(sender.id, (connections.get(sender.id) ?? 0) + 1);
    live.add(client);
    const t = pendingOffline.get(sender.id);
    if (t) {
      clearTimeout(t);
      pendingOffline.delete(sender.id);
    }
  });
  aedes.on('connackSent', (_packet, client) => loginsUnderWay.get(client)?.answered());
  // The CONNACK is out and the session's queue read: the login's Redis work is done.
  aedes.on('clientReady', (client) => loginsUnderWay.get(client)?.end());
  aedes.on('clientDisconnect', (client) => {
    live.delete(client);
    const sender = senders.get(client);
    if (!sender) return;
    const left = (connections.get(sender.id) ?? 1) - 1;
    if (left > 0) {
      connections.set(sender.id, left);
      return;
    }
    connections.delete(sender.id);
    if (sender.role !== 'device' || aedes.closed) return;
    // A device that disconnected cleanly sends no will; its retained `online` would lie.
    const timer = setTimeout(() => {
      pendingOffline.delete(sender.id);
      if (connections.has(sender.id)) return;
      onlineElsewhere(sender.id)
        .then((elsewhere) => (elsewhere || connections.has(sender.id) ? undefined : gate.markOffline(sender.id)))
        .catch((err: unknown) => log.warn({ err }, 'could not mark a device offline'));
    }, offlineGraceMs);
    timer.unref();
    pendingOffline.set(sender.id, timer);
  });
  // aedes reports a store that failed it (a Redis command of the fabric timing out under load:
  // the offline queueing of a publish, the wills of a dead node) as an 'error' on the broker: a
  // process without a listener would exit on it. The publish or the wills are retried by their
  // own paths (a client's retry, the next will sweep).
  (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err: err.message }, 'MQTT broker store error'));
  aedes.on('clientError', (client, err) => log.debug({ err: err.message, client: client.id }, 'MQTT client error'));
  aedes.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'MQTT connection error'));

  /** A pre-login slot for a new connection from `address`, or undefined (counted) when its source is full. */
  const admit = (address: string | undefined, socket: Duplex): (() => void) | undefined => {
    if (maxConnections > 0 && sockets >= maxConnections + overBoundMargin(maxConnections)) {
      mqttConnectionsRefusedTotal.inc({ reason: 'max_connections' });
      return undefined;
    }
    const slot = preauth.acquire(address);
    if (slot === undefined) {
      mqttConnectionsRefusedTotal.inc({ reason: 'preauth_per_source' });
      return undefined;
    }
    // Counted on the transport's own socket (TCP, or the one a WebSocket was upgraded on), which closes once whatever closes it.
    sockets++;
    socket.once('close', () => { sockets--; });
    return slot;
  };
  /** Hands a transport's MQTT byte stream to aedes behind the fixed-header guard. */
  const serve = (inner: Duplex, slot: () => void, req?: IncomingMessage): void => {
    inner.once('close', slot);
    const guard = new PacketGuard(inner, {
      maxConnectBytes: MAX_CONNECT_BYTES,
      maxPacketBytes,
      onViolation: (reason) => mqttConnectionsRefusedTotal.inc({ reason }),
    });
    preauthSlots.set(guard, slot);
    aedes.handle(guard, req);
  };

  let tcpServer: NetServer | undefined;
  let tcpPort: number | undefined;
  if (opts.tcp) {
    // MQTT packets leave in several small writes; Nagle would hold them for the peer's delayed ACK (~40 ms).
    const server = createServer({ noDelay: true }, (socket: Socket) => {
      const slot = admit(socket.remoteAddress, socket);
      if (slot === undefined) {
        socket.destroy();
        return;
      }
      mqttClientsConnected.inc({ transport: 'tcp' });
      socket.once('close', () => mqttClientsConnected.dec({ transport: 'tcp' }));
      serve(socket, slot);
    });
    const { host, port } = opts.tcp;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err }, 'MQTT TCP listener error'));
    tcpServer = server;
    tcpPort = (server.address() as AddressInfo).port;
  }
  const detachWs = opts.http
    ? attachWebSocket(opts.http, { path: opts.wsPath ?? '/mqtt', log, admit, serve, maxPacketBytes })
    : undefined;
  log.info({ tcp: opts.tcp ? `${opts.tcp.host}:${tcpPort}` : undefined, ws: opts.http ? opts.wsPath ?? '/mqtt' : undefined, maxConnections }, 'embedded MQTT broker ready');

  return {
    aedes,
    tcpPort,
    connectionsOf: (id) => connections.get(id) ?? 0,
    get clientCount() {
      return live.size;
    },
    get loginsInFlight() {
      return logins.inFlight;
    },
    moveClients(listFor) {
      moving = true;
      let told = 0;
      for (const client of live) {
        const sender = senders.get(client);
        if (sender === undefined || client.closed) continue;
        const body = serverError(sender.id, { code: 'NODE_DRAINING', message: 'this node is stopping: connect to one of `signaling`', signaling: listFor(sender.id) });
        const topic = ownTopic(sender.role, sender.id);
        // Straight to this connection, not through the fabric: the client is here, wherever its id routes.
        client.publish({ cmd: 'publish', topic, payload: Buffer.from(body), qos: 1, retain: false, dup: false }, (err?: Error) => {
          if (err) log.debug({ err: err.message, client: sender.id }, 'could not tell a client to move');
        });
        told++;
      }
      log.info({ clients: told }, 'draining: signaling clients told to move to other nodes');
      return told;
    },
    publish(topic, payload, { qos, retain = false }) {
      return new Promise<void>((resolve, reject) => {
        const packet: PublishPacket = { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false };
        aedes.publish(packet, (err?: Error) => (err ? reject(err) : resolve()));
      });
    },
    async close() {
      for (const t of pendingOffline.values()) clearTimeout(t);
      pendingOffline.clear();
      const tcpClosed = tcpServer ? new Promise<void>((resolve) => tcpServer?.close(() => resolve())) : Promise.resolve();
      await detachWs?.();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await tcpClosed;
    },
  };
}

function divert(packet: PublishPacket): void {
  packet.topic = DROP_TOPIC;
  packet.retain = false;
  packet.payload = EMPTY;
}

function toBuffer(payload: PublishPacket['payload']): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
}
