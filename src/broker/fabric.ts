/**
 * The broker fabric (docs/signaling.md "One broker across nodes"): the embedded brokers of all
 * signaling nodes share the cluster's Redis, so an app on one node and a device on another signal
 * as on one node. aedes is built for this: it takes its message bus (`mq`) and its store
 * (`persistence`) from outside.
 *
 * - `mq` is mqemitter-redis: a publish goes to Redis pub/sub and comes back to every node that
 *   subscribed its topic, the ingress node included; nothing is delivered locally on the way out,
 *   so a message reaches each subscriber once. Classic pub/sub works on a single Redis and on
 *   Redis Cluster alike (a cluster forwards PUBLISH to every node), so the emitter takes the same
 *   client either way. Channels carry the prefix `p2pd:mqtt:`.
 * - `persistence` is aedes-persistence-redis: retained messages (presence), the subscriptions and
 *   queued QoS 1 messages of persistent sessions, wills. It does Redis Cluster when told (`cluster`
 *   option: retained messages as one key each, no multi-key commands); we hand it our own client.
 *
 * Bounds added here, since the library keeps everything forever: a queued packet lives
 * `sessionExpirySec`; a client's queue holds at most `maxQueued` packets (the oldest go) and
 * disappears `sessionExpirySec` after its last enqueue; QoS 2 state of an unfinished exchange
 * lives as long. Persistent sessions themselves expire in clientIds.ts.
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { mqttStoreErrorsTotal } from '../metrics/metrics.ts';
import { closeRedisClient, createRedisClient, waitReady, type RedisClient } from '../redis.ts';
import { parseTopic } from '../signaling/topics.ts';
import { ClientIdLeases } from './clientIds.ts';
import { installFabricWills, type WillStore } from './fabricWills.ts';
import { RestoredSubscriptions, type StoredSubscription } from './restoredSubscriptions.ts';

const require = createRequire(import.meta.url);

/** How aedes-persistence-redis names a client's queue and QoS 2 state (its asyncPersistence.js). */
const outgoingKey = (clientId: string): string => `outgoing:${encodeURIComponent(clientId)}`;
const incomingKey = (clientId: string, messageId: number): string => `incoming:${encodeURIComponent(clientId)}:${messageId}`;
/** … a queued packet, and (with `:offlineCount`) how many queues still hold it. */
const packetKey = (brokerId: string, brokerCounter: number): string => `packet:${brokerId}:${brokerCounter}`;

/** The parts of aedes-persistence-redis' async persistence this file overrides or calls. */
interface AsyncRedisPersistence extends WillStore {
  setup(broker: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: ReadonlyArray<{ readonly clientId: string }>, packet: unknown): Promise<void>;
  outgoingUpdate(client: { readonly id: string }, packet: { readonly cmd?: string }): Promise<void>;
  storeRetained(packet: unknown): Promise<void>;
  incomingStorePacket(client: { readonly id: string }, packet: { readonly messageId: number }): Promise<void>;
  cleanSubscriptions(client: { readonly id: string }): Promise<unknown>;
  outgoingStream(client: { readonly id: string; readonly clean?: boolean }): AsyncIterable<unknown>;
  createRetainedStream(pattern: string): AsyncIterable<{ readonly topic: string; readonly payload: Buffer; readonly brokerId?: string }>;
  destroy(): Promise<void>;
}
/** aedes 1.x takes the library's callback wrapper (streams for retained and queued messages), around the async store. */
interface RedisPersistence extends AsyncRedisPersistence {
  readonly asyncPersistence: AsyncRedisPersistence;
  createRetainedStreamCombi(patterns: readonly string[]): Readable;
  // What aedes calls on the wrapper for a client's stored subscriptions (promise form, no callback).
  subscriptionsByClient(client: { readonly id: string }): Promise<StoredSubscription[]>;
  addSubscriptions(client: { readonly id: string }, subs: readonly StoredSubscription[]): Promise<unknown>;
  removeSubscriptions(client: { readonly id: string }, topics: readonly string[]): Promise<unknown>;
}
type PersistenceFactory = (opts: { conn: RedisClient; cluster?: boolean; packetTTL: () => number; maxSessionDelivery: number }) => RedisPersistence;
const redisPersistence = require('aedes-persistence-redis') as PersistenceFactory;
/** The library's own packet shape and encoder, so what we write is what it reads back. */
const requireFromLib = createRequire(require.resolve('aedes-persistence-redis'));
const LibPacket = (requireFromLib('aedes-persistence') as { Packet: new (packet: unknown) => unknown }).Packet;
const libMsgpack = requireFromLib('msgpack-lite') as { encode(value: unknown): Buffer; decode(buf: Buffer): unknown };

interface RedisEmitter {
  emit(packet: { readonly topic: string }, done?: (err?: Error) => void): void;
  on(topic: string, listener: (packet: { readonly payload: Buffer | string }, done: () => void) => void, done?: () => void): void;
  close(cb: () => void): void;
}
type EmitterClass = new (prefix: string, opts: { subConn: RedisClient; pubConn: RedisClient; matchEmptyLevels: boolean; concurrency: number }) => RedisEmitter;
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: EmitterClass };

export const FABRIC_CHANNEL_PREFIX = 'p2pd:mqtt:';
/**
 * aedes' announcements nobody hears: `new/subscribes`, `new/unsubscribes`, `disconnect/clients`
 * (aedes itself listens to `heartbeat`, `birth` and `new/clients`, its persistence to `$SYS/sub/+`).
 */
const UNHEARD_SYS_TOPIC = /^\$SYS\/[^/]+\/(new\/subscribes|new\/unsubscribes|disconnect\/clients)$/;
/** Where the library's store tells every node of a stored or removed subscription (aedes-persistence's broadcastPersistence.js). */
const SUBSCRIPTION_CHANGES = '$SYS/sub/+';

/** True once `db` answers a PING, false when it has not within `timeoutMs`. */
async function answers(db: RedisClient, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await db.ping();
      return true;
    } catch {
      if (Date.now() >= until) return false;
      await sleep(100);
    }
  }
}

const NOTHING_QUEUED: AsyncIterable<unknown> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }) };

/** False for a filter of signaling topics, where the gate never lets a message be retained. */
function mayBeRetained(filter: string): boolean {
  const kind = parseTopic(filter)?.kind;
  return kind !== 'peer' && kind !== 'server';
}
/** A persistent session away this long is gone: its subscriptions and queue are deleted. */
export const DEFAULT_SESSION_EXPIRY_SEC = 24 * 3600;
/** Packets queued per persistent session (aedes hands at most 1,000 to a reconnecting client anyway). */
export const DEFAULT_MAX_QUEUED = 1000;
/** How long a store write that failed waits for Redis to answer again before its one retry. */
const RETRY_WAIT_MS = 10_000;

export interface BrokerFabricOptions {
  /** `--redis-url`: one URL (Redis) or several (Redis Cluster seed nodes). */
  readonly urls: readonly string[];
  readonly log: Logger;
  readonly sessionExpirySec?: number;
  readonly maxQueued?: number;
  /** How often live client ids are refreshed and expired sessions swept (tests shorten it). */
  readonly leaseRefreshMs?: number;
}

export interface BrokerFabric {
  /** aedes' `mq`. */
  readonly mq: unknown;
  /** aedes' `persistence`. */
  readonly persistence: RedisPersistence;
  /** Who holds which client id across all nodes, and when a persistent session expires. */
  readonly leases: ClientIdLeases;
  close(): Promise<void>;
}

/** How long a starting node waits for Redis: the broker's store lives there, it cannot start without. */
const START_TIMEOUT_MS = 30_000;

/**
 * Connects to Redis and builds aedes' bus and store. Throws when Redis is not reachable within
 * 30 s. While Redis is briefly away later, commands wait (at most 2 s) for it to come back.
 */
export async function createBrokerFabric(opts: BrokerFabricOptions): Promise<BrokerFabric> {
  const log = opts.log.child({ role: 'fabric' });
  const cluster = opts.urls.length > 1;
  const sessionExpirySec = opts.sessionExpirySec ?? DEFAULT_SESSION_EXPIRY_SEC;
  const maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
  // The subscriber must keep its SUBSCRIBEs across reconnects: it queues while disconnected.
  const subConn = createRedisClient({ urls: opts.urls, log, name: 'p2pd-fabric-sub', offlineQueue: true });
  const pubConn = createRedisClient({ urls: opts.urls, log, name: 'p2pd-fabric-pub', offlineQueue: true, commandTimeoutMs: 2000 });
  const db = createRedisClient({ urls: opts.urls, log, name: 'p2pd-fabric-db', offlineQueue: true, commandTimeoutMs: 2000 });
  const ready = await Promise.all([subConn, pubConn, db].map((c) => waitReady(c, START_TIMEOUT_MS)));
  if (ready.includes(false)) {
    await Promise.all([subConn, pubConn, db].map((c) => closeRedisClient(c)));
    throw new Error('the broker fabric needs Redis (--redis-url) at start, and it did not answer within 30 s (or run with --mqtt-fabric off)');
  }

  // `cluster: true` (not an array) makes the library use our client in its cluster-safe mode.
  const persistence = redisPersistence({ conn: db, ...(cluster ? { cluster: true } : {}), packetTTL: () => sessionExpirySec, maxSessionDelivery: maxQueued });
  const store = persistence.asyncPersistence;
  // A QoS 1 message for persistent subscribers is written before it is published (aedes'
  // enqueueOffline runs before emitPacket): the library's 5 sequential round trips (7 with the
  // bounds), in 2 here, with the bounds, and 3 commands for the usual one subscriber (a device's
  // own topic) instead of 5:
  // - no count of queues holding the packet when one does: the PUBACK's decrement of the missing
  //   count answers -1, which deletes the packet as a count reaching 0 does (the library's clear, as
  //   patched in patches/: one script decrements and deletes a count at or below 0, so no count is
  //   ever left without a TTL). QoS 1 only: the library's QoS 2 clear deletes at exactly 0.
  // - LTRIM only once a push made the queue longer than its bound (RPUSH answers the length).
  const enqueue = async (subs: Parameters<AsyncRedisPersistence['outgoingEnqueueCombi']>[0], packet: unknown): Promise<void> => {
    if (subs.length === 0) return;
    const p = packet as { brokerId: string; brokerCounter: number; qos?: number };
    const pktKey = packetKey(p.brokerId, p.brokerCounter);
    const counted = subs.length > 1 || p.qos !== 1;
    // The packet before any queue names it: a client reading its queue drops a name whose packet
    // is missing (the library's getDecodedValue), so the two must not race.
    await Promise.all([
      db.set(pktKey, libMsgpack.encode(new LibPacket(packet)), 'EX', sessionExpirySec),
      counted ? db.set(`${pktKey}:offlineCount`, subs.length, 'EX', sessionExpirySec) : undefined,
    ]);
    // One key each, so a queue's commands go to one Redis node in order.
    const lengths = await Promise.all(subs.map((s) => {
      const key = outgoingKey(s.clientId);
      return Promise.all([db.rpush(key, pktKey), db.expire(key, sessionExpirySec)]).then(([length]) => length);
    }));
    await Promise.all(subs.map((s, i) => ((lengths[i] as number) > maxQueued ? db.ltrim(outgoingKey(s.clientId), -maxQueued, -1) : undefined)));
  };
  // A store write under a publish that fails (a command timed out: Redis busy or away) made aedes
  // close the publisher's connection, and under load its reconnection added to the load. It is
  // tried once more when Redis answers again (at most RETRY_WAIT_MS later). Should that fail too,
  // the connection still closes: MQTT 3.1.1 has no negative PUBACK, and acknowledging would promise
  // a queued copy that does not exist; the client sends the message again after reconnecting.
  const onceMore = async (operation: 'enqueue' | 'retain', write: () => Promise<void>): Promise<void> => {
    try {
      await write();
    } catch (err) {
      mqttStoreErrorsTotal.inc({ operation });
      if (!await answers(db, RETRY_WAIT_MS)) throw err;
      try {
        await write();
      } catch (again) {
        mqttStoreErrorsTotal.inc({ operation });
        log.warn({ err: (again as Error).message, operation }, 'a broker store write failed twice: the publisher is disconnected');
        throw again;
      }
    }
  };
  store.outgoingEnqueueCombi = (subs, packet) => onceMore('enqueue', () => enqueue(subs, packet));
  const storeRetained = store.storeRetained.bind(store);
  store.storeRetained = (packet) => onceMore('retain', () => storeRetained(packet));
  // Sending a QoS 1 message to a persistent session first records its packet id with the queued
  // copy (so that a resend after a reconnect keeps it, MQTT 3.1.1 §4.4); when that write fails
  // aedes closed the subscriber's connection instead of sending. The copy is queued already and
  // the id is known to this node (the library's cache), so the message goes out and its PUBACK
  // clears it; a resend after a reconnect would only carry a new id. QoS 2 state still fails.
  const outgoingUpdate = store.outgoingUpdate.bind(store);
  store.outgoingUpdate = (client, packet) => outgoingUpdate(client, packet).catch((err: unknown) => {
    if (packet.cmd !== 'publish') throw err;
    mqttStoreErrorsTotal.inc({ operation: 'delivery' });
  });
  // Wills in a set per broker, read only for dead brokers (fabricWills.ts). aedes hands the store
  // to its broker at setup: that is where this node's broker id comes from.
  let brokerId: string | undefined;
  const setup = store.setup.bind(store);
  store.setup = (broker) => {
    brokerId = (broker as { readonly id: string }).id;
    return setup(broker);
  };
  installFabricWills(store, {
    db, log, codec: libMsgpack,
    brokerId: () => {
      if (brokerId === undefined) throw new Error('the broker fabric is not set up yet');
      return brokerId;
    },
  });
  // aedes reads every client's queue right after its CONNACK. A clean session's is empty: its
  // login's cleanSubscriptions deleted the queue of any old session with its id (the library's
  // removeSubscriptions), and only persistent subscriptions are queued for. One LRANGE per login saved.
  const outgoingStream = store.outgoingStream.bind(store);
  store.outgoingStream = (client) => (client.clean === true ? NOTHING_QUEUED : outgoingStream(client));
  const storeIncoming = store.incomingStorePacket.bind(store);
  store.incomingStorePacket = async (client, packet) => {
    await storeIncoming(client, packet);
    await db.expire(incomingKey(client.id, packet.messageId), sessionExpirySec);
  };
  // aedes pipes a subscriber's retained messages without an error handler (its
  // lib/handlers/subscribe.js): a Redis read that times out there would end the process. The
  // subscriber gets no retained messages this time (presence: the next change reaches it).
  // Signaling topics hold no retained messages (the gate lets only presence be retained,
  // src/signaling/acl.ts): every login's SUBSCRIBE to its own topic read Redis for nothing.
  const retained = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => retained(patterns.filter(mayBeRetained)).on('error', (err: Error) => {
    log.warn({ err: err.message, topics: patterns.slice(0, 4) }, 'retained messages not read from redis: the subscriber gets none this time');
  });
  const mq = new MQEmitterRedisPrefix(FABRIC_CHANNEL_PREFIX, { subConn, pubConn, matchEmptyLevels: true, concurrency: 1000 });
  // aedes announces every SUBSCRIBE, UNSUBSCRIBE and disconnection on $SYS topics that no node
  // listens to and no client may subscribe (the ACL): a PUBLISH to Redis each, kept off the bus.
  const emit = mq.emit.bind(mq);
  mq.emit = (packet, done) => {
    if (UNHEARD_SYS_TOPIC.test(packet.topic)) {
      if (done) setImmediate(done);
      return;
    }
    emit(packet, done);
  };
  // A persistent session that logs in again and resubscribes what it had (the SDK resubscribes
  // after every reconnection) made the library store it again: SADD, HMSET and a `$SYS/sub/add`
  // PUBLISH that every node's subscription index had heard already when it was first stored.
  // What the login read back (aedes restores the session's subscriptions from the store before
  // its CONNACK) is remembered (restoredSubscriptions.ts), and a SUBSCRIBE of exactly that is not
  // written. The SUBSCRIBE itself goes on as before: the SUBACK, the retained messages (presence).
  // Anything that changes the client's stored subscriptions drops what was remembered: a write or
  // removal here, and another node's (its broadcast).
  const restored = new RestoredSubscriptions();
  const subscriptionsByClient = persistence.subscriptionsByClient.bind(persistence);
  // aedes asks for a client's subscriptions only at a persistent login (its connect.js fetchSubs).
  persistence.subscriptionsByClient = async (client) => {
    const read = restored.beginRead(client.id);
    let subs: StoredSubscription[] | undefined;
    try {
      subs = await subscriptionsByClient(client);
      return subs;
    } finally {
      restored.endRead(client.id, read, subs);
    }
  };
  // aedes stores a SUBSCRIBE's whole list once for each of its topics, at once (its
  // subscribe.js storeSubscriptions), and the library's broadcast waits for its echo under a key
  // made of the client id and the list's first topic: the second write took the first one's
  // place, the first never heard its echo, and the SUBACK of a persistent client subscribing to
  // several topics in one packet never came. One write per SUBSCRIBE (the list is the packet's).
  const writing = new WeakMap<readonly StoredSubscription[], Promise<unknown>>();
  const addSubscriptions = persistence.addSubscriptions.bind(persistence);
  persistence.addSubscriptions = (client, subs) => {
    if (restored.covers(client.id, subs)) return Promise.resolve(client);
    const under = writing.get(subs);
    if (under !== undefined) return under;
    restored.forget(client.id);
    const write = addSubscriptions(client, subs);
    writing.set(subs, write);
    return write;
  };
  const removing = <A extends unknown[]>(remove: (client: { readonly id: string }, ...rest: A) => Promise<unknown>) =>
    async (client: { readonly id: string }, ...rest: A): Promise<unknown> => {
      restored.forget(client.id);
      try {
        return await remove(client, ...rest);
      } finally {
        restored.forget(client.id);
      }
    };
  persistence.removeSubscriptions = removing(persistence.removeSubscriptions.bind(persistence));
  persistence.cleanSubscriptions = removing(persistence.cleanSubscriptions.bind(persistence));
  mq.on(SUBSCRIPTION_CHANGES, (packet, done) => {
    try {
      const { clientId } = JSON.parse(String(packet.payload)) as { clientId?: unknown };
      if (typeof clientId === 'string') restored.forget(clientId);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'a subscription change on the fabric not understood');
    }
    done();
  });
  const leases = new ClientIdLeases({
    db, log, sessionExpirySec, refreshMs: opts.leaseRefreshMs,
    forget: (clientId) => persistence.cleanSubscriptions({ id: clientId }).then(() => undefined),
  });
  log.info({ redis: cluster ? 'cluster' : 'single', sessionExpirySec, maxQueued }, 'broker fabric over redis');

  return {
    mq, persistence, leases,
    async close() {
      leases.stop();
      await new Promise<void>((resolve) => mq.close(() => resolve()));
      // aedes does not destroy its persistence; its destroy() would disconnect `db` at once.
      await Promise.all([closeRedisClient(db), closeRedisClient(subConn), closeRedisClient(pubConn)]);
    },
  };
}
