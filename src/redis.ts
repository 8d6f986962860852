/**
 * Connections to Redis or Redis Cluster (ioredis), tuned to fail fast: with Redis down a command
 * fails at once (no offline queue) or after `commandTimeoutMs`, so the API can answer 503 within a
 * second, and the client reconnects by itself (at most a second apart) when Redis is back.
 * One URL = a single Redis; several = the seed nodes of a Redis Cluster.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from './log.ts';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  readonly urls: readonly string[];
  readonly log?: Logger | undefined;
  /** Shown in CLIENT LIST. */
  readonly name?: string;
  /** A command without a reply after this fails (default 500 ms). */
  readonly commandTimeoutMs?: number;
  /**
   * Queue commands while disconnected instead of failing them (only for the subscriber
   * connection, whose SUBSCRIBE must survive reconnects).
   */
  readonly offlineQueue?: boolean;
}

interface ParsedUrl {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
  readonly tls: boolean;
}

function parseRedisUrl(raw: string): ParsedUrl {
  const u = new URL(raw);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: host === '' ? '127.0.0.1' : host,
    port: u.port === '' ? 6379 : Number(u.port),
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:',
  };
}

// Reconnect quickly: the outage test (and users) expect service back within about a second.
const retryStrategy = (times: number): number => Math.min(50 * times, 1000);

let errorLogAt = 0;

export function createRedisClient(opts: RedisConnectOptions): RedisClient {
  if (opts.urls.length === 0) throw new Error('createRedisClient needs at least one URL');
  const parsed = opts.urls.map(parseRedisUrl);
  const first = parsed[0] as ParsedUrl;
  const common = {
    commandTimeout: opts.commandTimeoutMs ?? 500,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    username: first.username,
    password: first.password,
    connectionName: opts.name,
    ...(first.tls ? { tls: {} } : {}),
  } satisfies RedisOptions;
  let client: RedisClient;
  if (parsed.length === 1) {
    client = new Redis({
      ...common,
      host: first.host,
      port: first.port,
      db: first.db,
      enableOfflineQueue: opts.offlineQueue ?? false,
      enableAutoPipelining: true,
      retryStrategy,
    });
  } else {
    const clusterOpts: ClusterOptions = {
      enableOfflineQueue: opts.offlineQueue ?? false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retryStrategy,
      slotsRefreshTimeout: 1000,
      retryDelayOnFailover: 100,
      redisOptions: common,
    };
    client = new Cluster(parsed.map((p) => ({ host: p.host, port: p.port })), clusterOpts);
  }
  // Without a listener an 'error' event would crash the process; log at most once a second.
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (now - errorLogAt < 1000) return;
    errorLogAt = now;
    opts.log?.warn({ err: err.message, redis: opts.name }, 'redis connection error');
  });
  return client;
}

/** Resolves true once the client is ready, false after `timeoutMs` (the client keeps trying). */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const onReady = (): void => { clearTimeout(timer); resolve(true); };
    const timer = setTimeout(() => { client.off('ready', onReady); resolve(false); }, timeoutMs);
    timer.unref();
    client.once('ready', onReady);
  });
}

/** Closes politely when Redis answers, at once otherwise. */
export async function closeRedisClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    const quit = client.quit().catch(() => undefined);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, 500).unref());
    await Promise.race([quit, timer]);
  }
  client.disconnect();
}

/**
 * True for what ioredis rejects a command with when Redis is slow or away: a timeout
 * (`commandTimeout`), a closed connection or one not writable, the retries per request spent. Such a rejection left
 * unhandled by a library (aedes and its Redis store fire some commands without awaiting them)
 * says nothing about the process's state.
 */
export function isRedisUnavailable(err: unknown): boolean {
  return err instanceof Error && /^(Command timed out|Connection is closed\.|Reached the max retries per request limit|Stream isn't writeable)/.test(err.message);
}
