/**
 * Sessions in Redis or Redis Cluster.
 *
 * Keys (the braces are hash tags: a session's keys share one slot, so one Lua script can touch
 * them atomically in a Cluster):
 * - `session:{ID}` — hash with short field names (FIELDS below), TTL = the session's ttl,
 *   refreshed at each change: a closed session stays readable for ttl after closing. Beside the
 *   session's fields, `ix`: unix ms, no later than when the indexes below were last written for
 *   it and than the lastSeenAt they were written with (INDEXED_AT).
 * - `session:{ID}:trace` — list of JSON trace events (newest TRACE_MAX_EVENTS), same TTL.
 * - `sessions:lastseen:{N}`, N = crc32(ID) mod 16 — the sweeper's index: sorted sets of open
 *   sessions scored by lastSeenAt. Sixteen buckets spread the index over the Cluster's masters
 *   instead of making one slot hot; the sweeper reads all sixteen. The index is a hint kept next
 *   to the record (a separate command, since it lives in another slot): the close script re-checks
 *   the record, and ids whose record is gone or closed are dropped from the index when met.
 * - `sessions:app:{APP}` — sorted set of an app's open sessions scored by when their record
 *   expires (unix ms), for `--max-sessions-per-app`. Scores follow the record's TTL, so a session
 *   whose record expires leaves the count by itself (purged at the app's next create), and the
 *   key expires with its newest member. With a single Redis the session scripts keep it (the key
 *   is built in Lua from the record's app id: one server holds every key); in a Cluster it lives
 *   in the app's slot, so a reservation script on it runs before the create and separate commands
 *   follow the close and the TTL refresh.
 * - `sessions:device:{DEVICE}` — the same for a device's open sessions, for `--max-viewers` (one
 *   session a viewer), kept the same way.
 * - channel `session_updates:{ID}` — each status change (and the creation), published by the
 *   same script that made it, so exactly once. Every node PSUBSCRIBEs `session_updates:*`
 *   (classic pub/sub reaches every node of a Cluster).
 *
 * Status changes run as Lua scripts (check-and-set), which is what makes close exactly-once
 * across nodes. With auto-pipelining, concurrent calls share round trips.
 */
import { crc32 } from 'node:zlib';
import type { Logger } from '../log.ts';
import { sessionStoreErrorsTotal, sessionsCreatedTotal } from '../metrics/metrics.ts';
import { P2pdError, deviceBusy, sessionExists, storeUnavailable, tooManySessions } from '../errors.ts';
import { TRACE_MAX_EVENTS, type Session, type SessionStatus, type SessionUpdate, type TraceEvent } from './model.ts';
import { Cluster } from 'ioredis';
import { closeRedisClient, createRedisClient, waitReady, type RedisClient } from '../redis.ts';
import { countClosed, type CloseOptions, type CreateOptions, type SessionPatch, type SessionStore } from './store.ts';

export const INDEX_BUCKETS = 16;
export const sessionKey = (id: string): string => `session:{${id}}`;
export const traceKey = (id: string): string => `session:{${id}}:trace`;
export const indexKey = (bucket: number): string => `sessions:lastseen:{${bucket}}`;
export const indexKeyOf = (id: string): string => indexKey(crc32(id) % INDEX_BUCKETS);
export const appKey = (appId: string): string => `sessions:app:{${appId}}`; // (built in Lua too)
export const deviceKey = (deviceId: string): string => `sessions:device:{${deviceId}}`; // (built in Lua too)
const UPDATES_PATTERN = 'session_updates:*';
/**
 * A session's hold on its app's and device's open sets and its place in the stale index are
 * refreshed by touch() (a signaling message) only once this long has passed since they were last
 * written (and at most a tenth of its TTL): by its creation, a status change or keepalive patch
 * (update), or an earlier touch, on any node — the record's INDEXED_AT says when. So a hold may
 * end up to that much before the record would expire, and the stale index may hold a lastSeenAt
 * up to that much older than the record's (never newer: the sweeper re-checks the record, so a
 * lagging index spares no stale session and closes no live one).
 */
export const HOLD_REFRESH_MS = 30_000;
/** Hash field of INDEXED_AT (not a Session field: get() leaves it out). */
const INDEXED_AT = 'ix';
/**
 * INDEXED_AT for indexes written at `atMs` (the store's clock) with `lastSeenSec`: the earlier of
 * the two, so that the next refresh is due by either clock.
 */
const indexedAt = (atMs: number, lastSeenSec: number): number => Math.min(atMs, lastSeenSec * 1000);

/** Session field → hash field. Short names keep a record well under 1 KiB. */
const FIELDS = {
  deviceId: 'd', appId: 'a', status: 's', stunServer: 'ss', turnNode: 'tn', turnAllocation: 'ta',
  region: 'r', createdAt: 'c', updatedAt: 'u', ttl: 't', lastSeenAt: 'l', closeReason: 'cr',
} as const satisfies Record<Exclude<keyof Session, 'sessionId'>, string>;

// The scripts. KEYS of one session: rec, trace, and, with a single Redis, its index bucket (in a
// Cluster the bucket lives in another slot, so the caller updates it with a separate command).
const LUA_LIB = `
local function appKey(a) return 'sessions:app:{' .. a .. '}' end
local function deviceKey(d) return 'sessions:device:{' .. d .. '}' end
-- An app's or a device's open set (key k): the session counts until its record would expire.
local function hold(k, id, atMs, ttl)
  local untilMs = tonumber(atMs) + tonumber(ttl) * 1000
  redis.call('ZADD', k, untilMs, id)
  if redis.call('PTTL', k) < tonumber(ttl) * 1000 then redis.call('PEXPIRE', k, tonumber(ttl) * 1000) end
end
local function notify(trace, ttl, from, to, reason, atMs, maxTrace, id, tn, d, a)
  local ev = { at = tonumber(atMs), kind = 'state', what = from .. '\u2192' .. to }
  if reason ~= '' then ev.detail = { reason = reason } end
  redis.call('RPUSH', trace, cjson.encode(ev))
  redis.call('LTRIM', trace, -tonumber(maxTrace), -1)
  redis.call('EXPIRE', trace, ttl)
  redis.call('PUBLISH', 'session_updates:{' .. id .. '}', cjson.encode({ sessionId = id, status = to,
    turnNode = tn or '', at = tonumber(atMs), deviceId = d or '', appId = a or '', reason = reason }))
end
-- 1 closed now, 0 was closed, -1 no such record, 2 seen since 'before' (not stale).
local function closeOne(rec, trace, idx, id, atMs, maxTrace, reason, updatedAt, before)
  local cur = redis.call('HMGET', rec, 's', 't', 'l', 'tn', 'd', 'a')
  if not cur[1] or cur[1] == 'closed' then
    if idx then redis.call('ZREM', idx, id) end
    if not cur[1] then return -1 end
    return 0
  end
  if before ~= '' and tonumber(cur[3]) >= tonumber(before) then return 2 end
  redis.call('HSET', rec, 's', 'closed', 'cr', reason, 'u', updatedAt)
  redis.call('EXPIRE', rec, cur[2])
  if idx then
    redis.call('ZREM', idx, id)
    if cur[6] then redis.call('ZREM', appKey(cur[6]), id) end
    if cur[5] then redis.call('ZREM', deviceKey(cur[5]), id) end
  end
  notify(trace, cur[2], cur[1], 'closed', reason, atMs, maxTrace, id, cur[4], cur[5], cur[6])
  return 1
end
`;

// ARGV: id, atMs, maxTrace, ttl, status, lastSeenAt, turnNode, deviceId, appId, maxOpenPerApp,
// maxOpenPerDevice, field, value, … → 1 created, 0 exists, -2 the app is at its cap, -3 the
// device is (single Redis; see appKey).
const LUA_CREATE = `${LUA_LIB}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local open = ARGV[5] ~= 'closed'
if KEYS[3] and open then
  local full = { { appKey(ARGV[9]), tonumber(ARGV[10]), -2 }, { deviceKey(ARGV[8]), tonumber(ARGV[11]), -3 } }
  for _, f in ipairs(full) do
    redis.call('ZREMRANGEBYSCORE', f[1], '-inf', ARGV[2])
    if f[2] > 0 and redis.call('ZCARD', f[1]) >= f[2] then return f[3] end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 12))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
if KEYS[3] and open then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
  hold(appKey(ARGV[9]), ARGV[1], ARGV[2], ARGV[4])
  hold(deviceKey(ARGV[8]), ARGV[1], ARGV[2], ARGV[4])
end
notify(KEYS[2], ARGV[4], 'new', ARGV[5], '', ARGV[2], ARGV[3], ARGV[1], ARGV[7], ARGV[8], ARGV[9])
return 1
`;

// ARGV: id, atMs, maxTrace, field, value, …
// → nil for no record, else { 1 if the status changed else 0, the record after as HGETALL }.
const LUA_UPDATE = `${LUA_LIB}
local cur = redis.call('HMGET', KEYS[1], 's', 't', 'a', 'd')
if not cur[1] then return false end
if cur[1] == 'closed' then return { 0, redis.call('HGETALL', KEYS[1]) } end
local to, seen = nil, nil
for i = 4, #ARGV, 2 do
  if ARGV[i] == 's' then to = ARGV[i + 1] elseif ARGV[i] == 'l' then seen = ARGV[i + 1] end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], cur[2])
local changed = 0
if to and to ~= cur[1] then
  changed = 1
  local h = redis.call('HMGET', KEYS[1], 'tn', 'd', 'a', 'cr')
  notify(KEYS[2], cur[2], cur[1], to, h[4] or '', ARGV[2], ARGV[3], ARGV[1], h[1], h[2], h[3])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], cur[2])
end
if KEYS[3] then
  if to == 'closed' then
    redis.call('ZREM', KEYS[3], ARGV[1])
    if cur[3] then redis.call('ZREM', appKey(cur[3]), ARGV[1]) end
    if cur[4] then redis.call('ZREM', deviceKey(cur[4]), ARGV[1]) end
  else
    if seen then redis.call('ZADD', KEYS[3], seen, ARGV[1]) end
    if cur[3] then hold(appKey(cur[3]), ARGV[1], ARGV[2], cur[2]) end
    if cur[4] then hold(deviceKey(cur[4]), ARGV[1], ARGV[2], cur[2]) end
  end
end
return { changed, redis.call('HGETALL', KEYS[1]) }
`;

// ARGV: id, atMs, maxTrace, reason, updatedAt, ifLastSeenBefore ('' = always).
const LUA_CLOSE = `${LUA_LIB}
return closeOne(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`;

// Single Redis only (the keys span slots). KEYS: rec, trace, idx per session.
// ARGV: atMs, maxTrace, reason, updatedAt, ifLastSeenBefore, id, id, … → the codes of closeOne.
const LUA_CLOSE_MANY = `${LUA_LIB}
local out = {}
for i = 6, #ARGV do
  local k = (i - 6) * 3
  out[#out + 1] = closeOne(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[i], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
end
return out
`;

// KEYS: rec, trace. ARGV: event json, maxTrace.
const LUA_APPEND = `
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
`;

// KEYS: rec, trace (, idx). ARGV: id, atMs, event json, maxTrace, nowSec, refreshMs → nil for no
// record, else { ttl, appId, deviceId, 1 if open, 1 if the indexes are due (HOLD_REFRESH_MS) }.
// A closed session gets the event with the time it has left. With a single Redis the due indexes
// are written here; in a Cluster the caller writes them (other slots).
const LUA_TOUCH = `${LUA_LIB}
local cur = redis.call('HMGET', KEYS[1], 's', 't', 'a', 'd', '${INDEXED_AT}')
if not cur[1] then return false end
local open = cur[1] ~= 'closed'
local ttl = tonumber(cur[2])
if not open then ttl = redis.call('TTL', KEYS[1]) end
if ttl > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
  redis.call('EXPIRE', KEYS[2], ttl)
end
local due = 0
if open then
  local atMs, seenMs = tonumber(ARGV[2]), tonumber(ARGV[5]) * 1000
  -- Due by either clock (see indexedAt); a record without the field (older nodes) is due.
  if math.max(atMs, seenMs) - tonumber(cur[5] or 0) >= math.min(tonumber(ARGV[6]), ttl * 100) then due = 1 end
  if due == 1 then
    redis.call('HSET', KEYS[1], 'u', ARGV[5], 'l', ARGV[5], '${INDEXED_AT}', math.min(atMs, seenMs))
  else
    redis.call('HSET', KEYS[1], 'u', ARGV[5], 'l', ARGV[5])
  end
  redis.call('EXPIRE', KEYS[1], ttl)
  if KEYS[3] and due == 1 then
    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
    if cur[3] then hold(appKey(cur[3]), ARGV[1], ARGV[2], ttl) end
    if cur[4] then hold(deviceKey(cur[4]), ARGV[1], ARGV[2], ttl) end
  end
end
return { ttl, cur[3] or '', cur[4] or '', open and 1 or 0, due }
`;

// A Cluster's reservation of a slot in an app's (or a device's) open set, before the session's
// own script. KEYS: the set. ARGV: id, atMs, untilMs, max, ttlMs → 1 added, 0 was there, -2 full.
const LUA_APP_RESERVE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local max = tonumber(ARGV[4])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -2 end
local added = redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return added
`;

type Arg = string | number;
interface SessionScripts {
  sessionCreate(...keysThenArgs: Arg[]): Promise<number>;
  sessionUpdate(...keysThenArgs: Arg[]): Promise<[number, string[]] | null>;
  sessionClose(...keysThenArgs: Arg[]): Promise<number>;
  /** Single Redis only: the number of keys comes first. */
  sessionCloseMany(numKeys: number, ...keysThenArgs: Arg[]): Promise<number[]>;
  sessionAppend(rec: string, trace: string, ...args: Arg[]): Promise<number>;
  sessionTouch(...keysThenArgs: Arg[]): Promise<[number, string, string, number, number] | null>;
  /** Cluster only: KEYS = the app's or the device's open set. */
  sessionAppReserve(appSet: string, ...args: Arg[]): Promise<number>;
}

/** `keysPerSession`: 2 in a Cluster, 3 (the index bucket too) with a single Redis. */
function defineScripts(client: RedisClient, keysPerSession: number): SessionScripts {
  // Fixed key counts keep a session key first, which is what a Cluster routes (and auto-pipelines) by.
  client.defineCommand('sessionCreate', { numberOfKeys: keysPerSession, lua: LUA_CREATE });
  client.defineCommand('sessionUpdate', { numberOfKeys: keysPerSession, lua: LUA_UPDATE });
  client.defineCommand('sessionClose', { numberOfKeys: keysPerSession, lua: LUA_CLOSE });
  client.defineCommand('sessionCloseMany', { lua: LUA_CLOSE_MANY });
  client.defineCommand('sessionAppend', { numberOfKeys: 2, lua: LUA_APPEND });
  client.defineCommand('sessionTouch', { numberOfKeys: keysPerSession, lua: LUA_TOUCH });
  client.defineCommand('sessionAppReserve', { numberOfKeys: 1, lua: LUA_APP_RESERVE });
  return client as unknown as SessionScripts;
}

function toFields(s: Partial<Session>): Arg[] {
  const out: Arg[] = [];
  for (const [name, field] of Object.entries(FIELDS)) {
    const v = s[name as keyof typeof FIELDS];
    if (v !== undefined) out.push(field, v);
  }
  return out;
}

function pairsToRecord(reply: string[] | Record<string, string>): Record<string, string> {
  if (!Array.isArray(reply)) return reply;
  const rec: Record<string, string> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) rec[reply[i] as string] = reply[i + 1] as string;
  return rec;
}

function fromHash(sessionId: string, h: Record<string, string>): Session | undefined {
  if (h[FIELDS.status] === undefined) return undefined;
  const num = (f: string): number => Number(h[f] ?? 0);
  const str = (f: string): string => h[f] ?? '';
  return {
    sessionId,
    deviceId: str(FIELDS.deviceId),
    appId: str(FIELDS.appId),
    status: str(FIELDS.status) as SessionStatus,
    stunServer: str(FIELDS.stunServer),
    turnNode: str(FIELDS.turnNode),
    turnAllocation: str(FIELDS.turnAllocation),
    region: str(FIELDS.region),
    createdAt: num(FIELDS.createdAt),
    updatedAt: num(FIELDS.updatedAt),
    ttl: num(FIELDS.ttl),
    lastSeenAt: num(FIELDS.lastSeenAt),
    closeReason: str(FIELDS.closeReason),
  };
}

export interface RedisSessionStoreOptions {
  /** One URL = single Redis; several = Redis Cluster seed nodes. */
  readonly urls: readonly string[];
  readonly log?: Logger | undefined;
  readonly commandTimeoutMs?: number;
  /** Clock in unix milliseconds, for trace and update timestamps. */
  readonly nowMs?: () => number;
}

export class RedisSessionStore implements SessionStore {
  readonly client: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly scripts: SessionScripts;
  private readonly listeners = new Set<(u: SessionUpdate) => void>();
  private readonly log: Logger | undefined;
  private readonly nowMs: () => number;
  private failures = 0;
  private closed = false;
  private probe: NodeJS.Timeout | undefined;
  /** Single Redis: the scripts keep the stale index themselves (one round trip per change). */
  private readonly inlineIndex: boolean;

  constructor(opts: RedisSessionStoreOptions) {
    this.log = opts.log;
    this.nowMs = opts.nowMs ?? Date.now;
    this.client = createRedisClient({ urls: opts.urls, log: opts.log, name: 'p2pd-sessions', ...(opts.commandTimeoutMs ? { commandTimeoutMs: opts.commandTimeoutMs } : {}) });
    this.client.on('ready', () => { this.failures = 0; });
    this.inlineIndex = !(this.client instanceof Cluster);
    this.scripts = defineScripts(this.client, this.inlineIndex ? 3 : 2);
    // The subscriber queues its PSUBSCRIBE until connected and re-subscribes after reconnects.
    this.subscriber = createRedisClient({ urls: opts.urls, log: opts.log, name: 'p2pd-session-updates', offlineQueue: true });
    this.subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => this.deliver(message));
    this.subscriber.psubscribe(UPDATES_PATTERN).catch((err: unknown) => this.log?.error({ err }, 'cannot subscribe to session updates'));
  }

  /** Resolves true once both connections are up (false after `timeoutMs`; they keep trying). */
  async ready(timeoutMs = 5000): Promise<boolean> {
    const [a, b] = await Promise.all([waitReady(this.client, timeoutMs), waitReady(this.subscriber, timeoutMs)]);
    return a && b;
  }

  get healthy(): boolean {
    return !this.closed && this.client.status === 'ready' && this.failures === 0;
  }

  private deliver(message: string): void {
    let u: SessionUpdate;
    try {
      u = JSON.parse(message) as SessionUpdate;
    } catch (err) {
      this.log?.warn({ err }, 'unreadable session update');
      return;
    }
    for (const l of this.listeners) {
      try {
        l(u);
      } catch (err) {
        this.log?.error({ err, sessionId: u.sessionId }, 'session update listener failed');
      }
    }
  }

  /** Runs one store operation; any Redis failure becomes STORE_UNAVAILABLE. */
  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      const r = await op();
      this.failures = 0;
      return r;
    } catch (err) {
      if (err instanceof P2pdError && err.code !== 'STORE_UNAVAILABLE') throw err;
      this.failures++;
      sessionStoreErrorsTotal.inc();
      this.probeSoon();
      throw storeUnavailable(err);
    }
  }

  /**
   * After a failure, PINGs until Redis answers, so health comes back without waiting for traffic
   * (an unready node gets none: it would stay unready forever).
   */
  private probeSoon(): void {
    if (this.probe || this.closed) return;
    this.probe = setTimeout(() => {
      this.client.ping().then(
        () => { this.failures = 0; this.probe = undefined; },
        () => { this.probe = undefined; this.probeSoon(); },
      );
    }, 250);
    this.probe.unref();
  }

  /** KEYS of one session for the scripts: with a single Redis the index bucket too. */
  private keys(id: string): string[] {
    return this.inlineIndex ? [sessionKey(id), traceKey(id), indexKeyOf(id)] : [sessionKey(id), traceKey(id)];
  }

  async create(session: Session, opts: CreateOptions = {}): Promise<void> {
    const id = session.sessionId;
    const max = opts.maxOpenPerApp ?? 0;
    const maxViewers = opts.maxOpenPerDevice ?? 0;
    await this.run(async () => {
      const { sessionId: _id, ...rest } = session;
      const keys = this.keys(id);
      const atMs = this.nowMs();
      const open = session.status !== 'closed';
      // A Cluster: take the app's slot, then the device's (each in its own hash slot), and give
      // back what was taken if anything after fails.
      const taken: string[] = [];
      const giveBack = (): Promise<unknown> => Promise.all(taken.map((k) => this.client.zrem(k, id).catch(() => undefined)));
      if (!this.inlineIndex && open) {
        const reserve = (k: string, cap: number): Promise<number> =>
          this.scripts.sessionAppReserve(k, id, atMs, atMs + session.ttl * 1000, cap, session.ttl * 1000);
        const app = await reserve(appKey(session.appId), max);
        if (app === -2) throw tooManySessions(session.appId, max);
        if (app === 1) taken.push(appKey(session.appId));
        let device: number;
        try {
          device = await reserve(deviceKey(session.deviceId), maxViewers);
        } catch (err) {
          await giveBack();
          throw err;
        }
        if (device === -2) {
          await giveBack();
          throw deviceBusy(session.deviceId, maxViewers);
        }
        if (device === 1) taken.push(deviceKey(session.deviceId));
      }
      // The creation writes the indexes: it counts as their first refresh (HOLD_REFRESH_MS).
      const fields = open ? [...toFields(rest), INDEXED_AT, indexedAt(atMs, session.lastSeenAt)] : toFields(rest);
      let created: number;
      try {
        created = await this.scripts.sessionCreate(...keys,
          id, atMs, TRACE_MAX_EVENTS, session.ttl, session.status, session.lastSeenAt,
          session.turnNode, session.deviceId, session.appId, max, maxViewers, ...fields);
      } catch (err) {
        await giveBack();
        throw err;
      }
      if (created !== 1) await giveBack();
      if (created === -2) throw tooManySessions(session.appId, max);
      if (created === -3) throw deviceBusy(session.deviceId, maxViewers);
      if (created !== 1) throw sessionExists(id);
      if (!this.inlineIndex && open) await this.client.zadd(indexKeyOf(id), session.lastSeenAt, id);
    });
    sessionsCreatedTotal.inc();
  }

  async get(sessionId: string): Promise<Session | undefined> {
    const h = await this.run(() => this.client.hgetall(sessionKey(sessionId)));
    return fromHash(sessionId, h);
  }

  async update(sessionId: string, patch: SessionPatch): Promise<Session | undefined> {
    return this.run(async () => {
      const keys = this.keys(sessionId);
      const atMs = this.nowMs();
      // A patch with lastSeenAt writes every index of an open session (below, or in the script
      // with a single Redis): a refresh in HOLD_REFRESH_MS's sense.
      const fields = patch.lastSeenAt === undefined ? toFields(patch) : [...toFields(patch), INDEXED_AT, indexedAt(atMs, patch.lastSeenAt)];
      const reply = await this.scripts.sessionUpdate(...keys, sessionId, atMs, TRACE_MAX_EVENTS, ...fields);
      if (reply === null) return undefined;
      const [changed, pairs] = reply;
      const s = fromHash(sessionId, pairsToRecord(pairs));
      if (!s) return undefined;
      if (s.status === 'closed') {
        if (changed === 1) countClosed(s.closeReason);
        if (!this.inlineIndex) {
          await Promise.all([indexKeyOf(sessionId), appKey(s.appId), deviceKey(s.deviceId)].map((k) => this.client.zrem(k, sessionId)));
        }
      } else if (!this.inlineIndex) {
        // The record's TTL was refreshed: so is its hold on the app's and the device's counts.
        const untilMs = atMs + s.ttl * 1000;
        await Promise.all([appKey(s.appId), deviceKey(s.deviceId)].map((k) => this.client.zadd(k, 'XX', untilMs, sessionId)));
        if (patch.lastSeenAt !== undefined) await this.client.zadd(indexKeyOf(sessionId), s.lastSeenAt, sessionId);
      }
      return s;
    });
  }

  async close(sessionId: string, reason: string, now: number, opts: CloseOptions = {}): Promise<boolean> {
    return this.run(async () => {
      const keys = this.keys(sessionId);
      const code = await this.scripts.sessionClose(...keys,
        sessionId, this.nowMs(), TRACE_MAX_EVENTS, reason, now, opts.ifLastSeenBefore ?? '');
      if (code !== 2 && !this.inlineIndex) await this.client.zrem(indexKeyOf(sessionId), sessionId);
      if (code === 1 && !this.inlineIndex) {
        const [appId, deviceId] = await this.client.hmget(sessionKey(sessionId), FIELDS.appId, FIELDS.deviceId);
        if (appId) await this.client.zrem(appKey(appId), sessionId);
        if (deviceId) await this.client.zrem(deviceKey(deviceId), sessionId);
      }
      if (code === 1) countClosed(reason);
      return code === 1;
    });
  }

  async closeMany(sessionIds: readonly string[], reason: string, now: number, opts: CloseOptions = {}): Promise<string[]> {
    if (!this.inlineIndex) {
      // A Cluster spreads the sessions over slots: one script each, in parallel (auto-pipelined per master).
      const done = await Promise.all(sessionIds.map((id) => this.close(id, reason, now, opts)));
      return sessionIds.filter((_, i) => done[i]);
    }
    const closed: string[] = [];
    const chunk = 200;
    await this.run(() => Promise.all(Array.from({ length: Math.ceil(sessionIds.length / chunk) }, async (_, c) => {
      const ids = sessionIds.slice(c * chunk, (c + 1) * chunk);
      const keys = ids.flatMap((id) => this.keys(id));
      const codes = await this.scripts.sessionCloseMany(keys.length, ...keys,
        this.nowMs(), TRACE_MAX_EVENTS, reason, now, opts.ifLastSeenBefore ?? '', ...ids);
      codes.forEach((code, i) => {
        if (code === 1) closed.push(ids[i] as string);
      });
    })));
    for (let i = 0; i < closed.length; i++) countClosed(reason);
    return closed;
  }

  async appendTrace(sessionId: string, event: TraceEvent): Promise<void> {
    await this.run(() => this.scripts.sessionAppend(sessionKey(sessionId), traceKey(sessionId), JSON.stringify(event), TRACE_MAX_EVENTS));
  }

  async touch(sessionId: string, event: TraceEvent, nowSec: number): Promise<void> {
    await this.run(async () => {
      const atMs = this.nowMs();
      const reply = await this.scripts.sessionTouch(...this.keys(sessionId), sessionId, atMs, JSON.stringify(event), TRACE_MAX_EVENTS, nowSec, HOLD_REFRESH_MS);
      if (reply === null || this.inlineIndex || reply[3] !== 1 || reply[4] !== 1) return;
      // In a Cluster the indexes live in other slots: written here when the script found them due
      // (the record's lastSeenAt is what the sweeper finally trusts).
      const [ttl, appId, deviceId] = reply;
      const untilMs = atMs + ttl * 1000;
      await Promise.all([
        appId === '' ? undefined : this.client.zadd(appKey(appId), 'XX', untilMs, sessionId),
        deviceId === '' ? undefined : this.client.zadd(deviceKey(deviceId), 'XX', untilMs, sessionId),
        this.client.zadd(indexKeyOf(sessionId), nowSec, sessionId),
      ]);
    });
  }

  async trace(sessionId: string): Promise<TraceEvent[]> {
    const items = await this.run(() => this.client.lrange(traceKey(sessionId), 0, -1));
    const events: TraceEvent[] = [];
    for (const item of items) {
      try {
        events.push(JSON.parse(item) as TraceEvent);
      } catch {
        this.log?.warn({ sessionId }, 'unreadable trace event skipped');
      }
    }
    return events;
  }

  async findStale(beforeSec: number, limit: number): Promise<string[]> {
    // Each bucket gives its oldest share and the merge keeps the oldest of those: exact up to 64,
    // nearly in order beyond (the overall oldest always first). Reading `limit` from each of the
    // sixteen buckets would move sixteen times what a sweeper's batch uses.
    const share = Math.min(limit, Math.max(64, Math.ceil(limit / INDEX_BUCKETS)));
    const perBucket = await this.run(() => Promise.all(Array.from({ length: INDEX_BUCKETS }, (_, b) =>
      this.client.zrangebyscore(indexKey(b), '-inf', `(${beforeSec}`, 'WITHSCORES', 'LIMIT', 0, share))));
    const all: { id: string; score: number }[] = [];
    for (const flat of perBucket) {
      for (let i = 0; i + 1 < flat.length; i += 2) all.push({ id: flat[i] as string, score: Number(flat[i + 1]) });
    }
    all.sort((a, b) => a.score - b.score);
    return all.slice(0, limit).map((e) => e.id);
  }

  async countOpenForApp(appId: string): Promise<number> {
    return this.run(() => this.client.zcount(appKey(appId), `(${this.nowMs()}`, '+inf'));
  }

  async countOpenForDevice(deviceId: string): Promise<number> {
    return this.run(() => this.client.zcount(deviceKey(deviceId), `(${this.nowMs()}`, '+inf'));
  }

  async countOpen(): Promise<number> {
    const counts = await this.run(() => Promise.all(Array.from({ length: INDEX_BUCKETS }, (_, b) => this.client.zcard(indexKey(b)))));
    return counts.reduce((a, b) => a + b, 0);
  }

  onUpdate(listener: (u: SessionUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probe) clearTimeout(this.probe);
    this.listeners.clear();
    await Promise.all([closeRedisClient(this.subscriber), closeRedisClient(this.client)]);
  }
}
