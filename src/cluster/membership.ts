/**
 * This node's membership in the cluster: a heartbeat that writes its entry (with its current
 * load) every `heartbeatMs`, and a cached view of every node refreshed at the same time, so
 * choosing a TURN node costs no round trip. Liveness is judged when the view is read (each
 * entry's age against its own interval), so a silent node drops out after 3 of its heartbeats
 * whatever the cache's age. This node always sees itself as it is now (e.g. draining at once).
 */
import type { Logger } from '../log.ts';
import { clusterNodesHealthy } from '../metrics/metrics.ts';
import { isAlive, type NodeInfo, type NodeLoad } from './nodeInfo.ts';
import type { NodeRegistry } from './registry.ts';

export type NodeIdentity = Omit<NodeInfo, 'load' | 'draining' | 'heartbeatAt' | 'heartbeatMs'>;

export interface MembershipOptions {
  readonly registry: NodeRegistry;
  readonly self: NodeIdentity;
  readonly heartbeatMs: number;
  /** This node's load now (the TURN workers' allocations and bandwidth). */
  readonly load: () => Promise<NodeLoad>;
  readonly log?: Logger | undefined;
  readonly nowMs?: () => number;
}

export class Membership {
  private readonly opts: MembershipOptions;
  private readonly nowMs: () => number;
  private view: NodeInfo[] = [];
  /** When the view was last read from the registry (unix ms). */
  private viewAt = 0;
  private load: NodeLoad = { allocations: 0, bps: 0 };
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private stopped = false;

  constructor(opts: MembershipOptions) {
    this.opts = opts;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  get id(): string {
    return this.opts.self.id;
  }

  get region(): string {
    return this.opts.self.region;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** This node's entry as of now. */
  selfInfo(): NodeInfo {
    return { ...this.opts.self, load: this.load, draining: this.draining, heartbeatAt: this.nowMs(), heartbeatMs: this.opts.heartbeatMs };
  }

  /** Writes the first heartbeat (failures are logged: the node starts even with its store down). */
  async start(): Promise<void> {
    await this.beat();
    const tick = (): void => {
      this.timer = setTimeout(() => {
        void this.beat().finally(() => { if (!this.stopped) tick(); });
      }, this.opts.heartbeatMs);
      this.timer.unref();
    };
    tick();
  }

  /** One heartbeat now: refresh load, write own entry, re-read the view. Never throws. */
  beat(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.beating ??= (async () => {
      try {
        this.load = await this.opts.load();
      } catch (err) {
        this.opts.log?.warn({ err }, 'cannot read node load');
      }
      try {
        await this.opts.registry.heartbeat(this.selfInfo());
        this.view = await this.opts.registry.list();
        this.viewAt = this.nowMs();
      } catch (err) {
        this.opts.log?.warn({ err: (err as Error).message }, 'cluster heartbeat failed');
      }
      const alive = this.nodes();
      for (const role of ['stun', 'turn', 'signal', 'api']) clusterNodesHealthy.set({ role }, alive.filter((n) => n.roles.includes(role)).length);
    })().finally(() => { this.beating = undefined; });
    return this.beating;
  }

  /**
   * Live nodes (this one included, as it is now). While the registry cannot be read, others are
   * judged as of the last good read (plus one interval): not knowing is not the same as silence,
   * and an outage of the store must not move every session to this node.
   */
  nodes(): NodeInfo[] {
    const now = Math.min(this.nowMs(), this.viewAt + this.opts.heartbeatMs);
    const others = this.view.filter((n) => n.id !== this.opts.self.id && isAlive(n, now));
    return this.stopped ? others : [this.selfInfo(), ...others];
  }

  /** Regions that have live nodes. */
  regions(): Set<string> {
    return new Set(this.nodes().map((n) => n.region));
  }

  /** Looks a live node up by id. */
  node(id: string): NodeInfo | undefined {
    return this.nodes().find((n) => n.id === id);
  }

  /** Stops taking new sessions: marked draining here at once and in the registry now. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.beat();
  }

  /** Stops the heartbeat and removes this node from the registry (best effort). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.draining = true;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.beating;
    try {
      await this.opts.registry.remove(this.opts.self.id);
    } catch (err) {
      this.opts.log?.warn({ err: (err as Error).message }, 'cannot remove this node from the registry');
    }
  }
}
