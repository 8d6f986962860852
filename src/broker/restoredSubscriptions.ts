/**
 * The subscriptions a persistent session's login read back from the fabric's store (aedes'
 * `subscriptionsByClient` at CONNECT), by client id, so that the SUBSCRIBE a reconnecting client
 * sends right after (the SDK resubscribes) need not store them again when it asks exactly those:
 * the library's SADD, HMSET and `$SYS/sub/add` broadcast rewrite what Redis holds and what every
 * node's subscription index already learnt when they were first stored (fabric.ts).
 *
 * An entry says what Redis held for the client at its login, so it is dropped by anything that
 * may have changed that since: a write or removal of the client's subscriptions on this node, a
 * `$SYS/sub/add` or `$SYS/sub/rm` of another node (a connection with the same id there, a clean
 * login, an expired session forgotten), a newer login. A read that such a change overtook is not
 * remembered. What is not remembered is written as before, so every bound errs towards writing.
 *
 * It is memory a stranger with a token can make a node hold (a login with a fresh client id
 * each), so it is bounded: at most `maxClients` entries (the oldest go), `maxTopics`
 * subscriptions each (a session with more is not remembered), and an entry serves only
 * `ttlMs` after its login (a client resubscribes at once; later SUBSCRIBEs are written).
 */

/** A stored subscription as aedes hands it to its persistence (mqtt-packet's SUBSCRIBE entry). */
export interface StoredSubscription {
  readonly topic: string;
  readonly qos: number;
  /** MQTT 5 options (no local, retain as published, retain handling), stored with it. */
  readonly nl?: boolean | undefined;
  readonly rap?: boolean | undefined;
  readonly rh?: number | undefined;
}

export interface RestoredSubscriptionsOptions {
  readonly maxClients?: number;
  readonly maxTopics?: number;
  readonly ttlMs?: number;
  readonly nowMs?: () => number;
}

export const DEFAULT_MAX_CLIENTS = 4096;
export const DEFAULT_MAX_TOPICS = 16;
export const DEFAULT_TTL_MS = 30_000;

interface Entry {
  readonly atMs: number;
  /** Topic → its options as stored (`options`). */
  readonly topics: ReadonlyMap<string, string>;
}

/** A login's read of the store, spoiled when the client's subscriptions change meanwhile. */
export interface PendingRead {
  spoiled: boolean;
}

/** Everything that is stored of a subscription besides its topic; a missing option is not `false`. */
const options = (s: StoredSubscription): string => `${s.qos}|${String(s.nl)}|${String(s.rap)}|${String(s.rh)}`;

export class RestoredSubscriptions {
  private readonly maxClients: number;
  private readonly maxTopics: number;
  private readonly ttlMs: number;
  private readonly nowMs: () => number;
  private readonly entries = new Map<string, Entry>();
  /** Reads under way, by client id (as many as logins of that id are under way on this node). */
  private readonly reading = new Map<string, PendingRead[]>();

  constructor(opts: RestoredSubscriptionsOptions = {}) {
    this.maxClients = opts.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.maxTopics = opts.maxTopics ?? DEFAULT_MAX_TOPICS;
    this.ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /** Entries held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Before a login reads the client's subscriptions: a change from now on spoils what it reads. */
  beginRead(clientId: string): PendingRead {
    const read: PendingRead = { spoiled: false };
    const list = this.reading.get(clientId);
    if (list) list.push(read);
    else this.reading.set(clientId, [read]);
    return read;
  }

  /** After the read (also when it failed): remembers `subs` unless a change spoiled the read. */
  endRead(clientId: string, read: PendingRead, subs: readonly StoredSubscription[] | undefined): void {
    const list = this.reading.get(clientId);
    if (list) {
      const left = list.filter((r) => r !== read);
      if (left.length > 0) this.reading.set(clientId, left);
      else this.reading.delete(clientId);
    }
    this.entries.delete(clientId);
    if (read.spoiled || subs === undefined || subs.length === 0 || subs.length > this.maxTopics) return;
    const topics = new Map<string, string>();
    for (const s of subs) topics.set(s.topic, options(s));
    this.entries.set(clientId, { atMs: this.nowMs(), topics });
    // A Map iterates in insertion order: the first key is the oldest login.
    if (this.entries.size > this.maxClients) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** True when the store holds every one of `subs` for the client exactly so (as its login read it). */
  covers(clientId: string, subs: readonly StoredSubscription[]): boolean {
    const entry = this.entries.get(clientId);
    if (entry === undefined) return false;
    if (this.nowMs() - entry.atMs > this.ttlMs) {
      this.entries.delete(clientId);
      return false;
    }
    return subs.length > 0 && subs.every((s) => entry.topics.get(s.topic) === options(s));
  }

  /** The client's stored subscriptions change (or may have): what was read of them no longer holds. */
  forget(clientId: string): void {
    this.entries.delete(clientId);
    for (const read of this.reading.get(clientId) ?? []) read.spoiled = true;
  }
}
