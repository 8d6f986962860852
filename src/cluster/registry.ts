/**
 * The node registry: every node's entry, written at its heartbeat. Memory for one node; Redis
 * (one hash, `p2pd:nodes`, field = node id, value = JSON) when nodes share a store. Entries are
 * filtered by age when read (isAlive); long-dead ones are deleted.
 */
import type { Logger } from '../log.ts';
import { storeUnavailable } from '../errors.ts';
import { closeRedisClient, createRedisClient, waitReady, type RedisClient } from '../redis.ts';
import type { NodeInfo } from './nodeInfo.ts';

export interface NodeRegistry {
  /** Writes or refreshes a node's entry. */
  heartbeat(info: NodeInfo): Promise<void>;
  /** Every entry, fresh or not. */
  list(): Promise<NodeInfo[]>;
  remove(id: string): Promise<void>;
  readonly healthy: boolean;
  shutdown(): Promise<void>;
}

export class MemoryNodeRegistry implements NodeRegistry {
  private readonly nodes = new Map<string, NodeInfo>();
  readonly healthy = true;
  async heartbeat(info: NodeInfo): Promise<void> { this.nodes.set(info.id, info); }
  async list(): Promise<NodeInfo[]> { return [...this.nodes.values()]; }
  async remove(id: string): Promise<void> { this.nodes.delete(id); }
  async shutdown(): Promise<void> { /* nothing held */ }
}

export const NODES_KEY = 'p2pd:nodes';
/** Entries silent this long are deleted from the hash (they stopped counting long before). */
const FORGET_AFTER_MS = 3600_000;

export class RedisNodeRegistry implements NodeRegistry {
  readonly client: RedisClient;
  private failed = false;

  constructor(opts: { urls: readonly string[]; log?: Logger | undefined }) {
    this.client = createRedisClient({ urls: opts.urls, log: opts.log, name: 'p2pd-registry' });
  }

  ready(timeoutMs = 5000): Promise<boolean> {
    return waitReady(this.client, timeoutMs);
  }

  get healthy(): boolean {
    return this.client.status === 'ready' && !this.failed;
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      const r = await op();
      this.failed = false;
      return r;
    } catch (err) {
      this.failed = true;
      throw storeUnavailable(err);
    }
  }

  async heartbeat(info: NodeInfo): Promise<void> {
    await this.run(() => this.client.hset(NODES_KEY, info.id, JSON.stringify(info)));
  }

  async list(): Promise<NodeInfo[]> {
    const all = await this.run(() => this.client.hgetall(NODES_KEY));
    const out: NodeInfo[] = [];
    const forget: string[] = [];
    const now = Date.now();
    for (const [id, json] of Object.entries(all)) {
      try {
        const n = JSON.parse(json) as NodeInfo;
        if (now - n.heartbeatAt > FORGET_AFTER_MS) forget.push(id);
        else out.push(n);
      } catch {
        forget.push(id);
      }
    }
    if (forget.length > 0) await this.run(() => this.client.hdel(NODES_KEY, ...forget));
    return out;
  }

  async remove(id: string): Promise<void> {
    await this.run(() => this.client.hdel(NODES_KEY, id));
  }

  async shutdown(): Promise<void> {
    await closeRedisClient(this.client);
  }
}
