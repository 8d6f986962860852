/**
 * A node's drain (docs/turn.md "Draining"): once SIGTERM marks it draining, new Allocates are
 * sent to another TURN node of the cluster (300 Try Alternate, RFC 8489 §10) — re-chosen at
 * every heartbeat, as nodes come and go — while the relays already here keep flowing until they
 * end or `--drain-grace` runs out.
 */
import type { Membership } from '../cluster/membership.ts';
import { pickAlternateTurn } from '../cluster/placement.ts';
import type { NodeInfo } from '../cluster/nodeInfo.ts';
import type { Logger } from '../log.ts';
import type { AlternateServer } from '../turn/server.ts';

/** A node's registry entry as the ALTERNATE-SERVER a TURN client is sent to. */
export function alternateOf(n: NodeInfo): AlternateServer {
  const v6 = n.host.includes(':');
  return { ip4: v6 ? undefined : n.host, ip6: v6 ? n.host : undefined, port: n.port, tlsPort: n.tlsPort, tlsHost: n.tlsHost };
}

export interface DrainOptions {
  readonly membership: Membership;
  /** Tells every TURN worker where new allocations go (undefined: here). */
  readonly setAlternate: (alt: AlternateServer | undefined) => void;
  /** Allocations alive on this node now. */
  readonly allocations: () => Promise<number>;
  readonly graceSec: number;
  /** How often the alternate is chosen again and the allocations counted. */
  readonly intervalMs: number;
  readonly log: Logger;
}

export class Drain {
  private readonly opts: DrainOptions;
  private timer: NodeJS.Timeout | undefined;
  /** What setAlternate was last told (undefined: nothing yet). */
  private chosen: string | undefined;
  private started = false;

  constructor(opts: DrainOptions) {
    this.opts = opts;
  }

  /** Marks the node draining (registry, readiness) and starts sending allocations elsewhere. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.opts.membership.drain();
    this.choose();
    this.timer = setInterval(() => this.choose(), this.opts.intervalMs);
    this.timer.unref();
  }

  /**
   * Resolves once no allocation is left here or the grace has run out, whichever is first
   * (at once with a grace of 0).
   */
  async settled(): Promise<void> {
    const until = Date.now() + this.opts.graceSec * 1000;
    for (;;) {
      const left = await this.opts.allocations().catch(() => 0);
      if (left === 0) return;
      const remaining = until - Date.now();
      if (remaining <= 0) {
        this.opts.log.info({ allocations: left }, 'drain grace over; stopping with relays still open');
        return;
      }
      await new Promise((r) => setTimeout(r, Math.min(this.opts.intervalMs, remaining, 500)));
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private choose(): void {
    const self = this.opts.membership.selfInfo();
    const next = pickAlternateTurn(this.opts.membership.nodes(), self);
    const alt = next ? alternateOf(next) : undefined;
    const key = next ? `${next.id} ${JSON.stringify(alt)}` : '';
    if (key === this.chosen) return;
    this.chosen = key;
    this.opts.setAlternate(alt);
    if (next) this.opts.log.info({ alternate: next.id }, 'draining: new allocations go to another TURN node');
    else this.opts.log.warn('draining, but no other TURN node can take allocations: allocating here');
  }
}
