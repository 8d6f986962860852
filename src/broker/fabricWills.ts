/**
 * Wills on the broker fabric (docs/signaling.md "One broker across nodes"). aedes stores each
 * connection's will while it is connected, and every node, each 4 heartbeats, asks the store for
 * the wills of the brokers that stopped beating and publishes them (MQTT 3.1.1 §3.1.2.5).
 *
 * The library kept all wills in one Redis list, `will`: each login and each close ran an LREM
 * over the whole list (one Redis node scanning 50,000 entries at 100,000 connections, for every
 * device that came or went), and each check read the first 10,000 wills with a GET each, on every
 * node, every minute, whether their brokers lived or not — and never saw the 10,001st. At 100,000
 * connections those GETs were 10 commands per offer and the LREMs stalled the Redis node holding
 * the list past the cluster's node timeout (docs/performance.md "Scale-out").
 *
 * Here the wills of each broker are a set, `p2pd:mqtt:wills:<broker id>` of will keys, and
 * `p2pd:mqtt:will-brokers` lists the brokers that have one. A will costs three O(1) commands to
 * write (SADD, SET, and the SADD that lists its broker) and two to delete (SREM, GETDEL). A check
 * reads the list (one SMEMBERS) and then only the wills of dead brokers, in slices (SSCAN), each taken with GETDEL, so that of the
 * nodes checking at once exactly one publishes it; a dead broker whose set is empty leaves the list.
 * The will values keep the library's key and encoding (`will:<broker id>:<client id>`).
 */
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';

const willKey = (brokerId: string, clientId: string): string => `will:${brokerId}:${encodeURIComponent(clientId)}`;
const willsOf = (brokerId: string): string => `p2pd:mqtt:wills:${brokerId}`;
export const WILL_BROKERS_KEY = 'p2pd:mqtt:will-brokers';
/** Will keys read per SSCAN of a dead broker's set. */
const SCAN_COUNT = 200;

interface Codec {
  encode(value: unknown): Buffer;
  decode(buf: Buffer): unknown;
}

/** The will methods of aedes-persistence-redis' async store that this file replaces. */
export interface WillStore {
  putWill(client: { readonly id: string }, packet: Record<string, unknown>): Promise<unknown>;
  delWill(client: { readonly id: string; readonly brokerId?: string }): Promise<unknown>;
  streamWill(brokers?: Readonly<Record<string, unknown>>): AsyncIterable<unknown>;
}

export interface FabricWillsOptions {
  readonly db: RedisClient;
  readonly log: Logger;
  /** The library's msgpack, so that what is written is what it reads. */
  readonly codec: Codec;
  /** This node's aedes id (known once aedes has set up its store). */
  readonly brokerId: () => string;
}

export function installFabricWills(store: WillStore, opts: FabricWillsOptions): void {
  const { db, log, codec } = opts;

  store.putWill = async (client, packet) => {
    const brokerId = opts.brokerId();
    const key = willKey(brokerId, client.id);
    packet.clientId = client.id;
    packet.brokerId = brokerId;
    // The broker is listed with each will, not once: a broker the others took for dead (it missed
    // 3 beats, its set emptied and left the list) is listed again by its next will.
    await Promise.all([
      db.sadd(willsOf(brokerId), key),
      db.set(key, codec.encode(packet)),
      db.sadd(WILL_BROKERS_KEY, brokerId),
    ]);
    return client;
  };

  // Every login deletes the client's old will first (aedes' storeWill), also when it has none.
  // aedes chains it with `.finally()` only, so it must not reject: a will left behind is
  // replaced by the next login's, or published at worst when the node holding it dies.
  store.delWill = async (client) => {
    // At a login aedes hands in the connecting client, which has no `brokerId`: the library looks
    // for `will:undefined:<id>`, which nothing writes (putWill keys by the broker's id). Two
    // commands per login for nothing; the wills of a closing client or a dead node name their broker.
    if (client.brokerId === undefined) return null;
    const key = willKey(client.brokerId, client.id);
    try {
      const [, packet] = await Promise.all([db.srem(willsOf(client.brokerId), key), db.getdelBuffer(key)]);
      return packet ? codec.decode(packet) : null;
    } catch (err) {
      log.warn({ err: (err as Error).message, client: client.id }, 'an old will not deleted from redis');
      return null;
    }
  };

  store.streamWill = (brokers = {}) => deadBrokersWills(brokers);

  /** The wills of brokers not in `alive` (aedes' brokers heard within 3 heartbeats), each taken once. */
  async function * deadBrokersWills(alive: Readonly<Record<string, unknown>>): AsyncGenerator<unknown> {
    for (const brokerId of await db.smembers(WILL_BROKERS_KEY)) {
      if (alive[brokerId] !== undefined || brokerId === opts.brokerId()) continue;
      const set = willsOf(brokerId);
      let cursor = '0';
      do {
        const [next, keys] = await db.sscan(set, cursor, 'COUNT', SCAN_COUNT);
        cursor = next;
        const taken = await Promise.all(keys.map((key) => db.getdelBuffer(key)));
        if (keys.length > 0) await db.srem(set, ...keys);
        for (const packet of taken) if (packet) yield codec.decode(packet);
      } while (cursor !== '0');
      // Empty now (a will written since would name a live broker: this one is dead).
      if (await db.scard(set) === 0) await db.srem(WILL_BROKERS_KEY, brokerId);
    }
  }
}
