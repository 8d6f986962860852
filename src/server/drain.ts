/**
 * A node's drain (docs/turn.md "Draining"): once SIGTERM marks it draining, new Allocates are
 * sent to another TURN node of the cluster (300 Try Alternate, RFC 8489 §10) — re-chosen at
 * every heartbeat, as nodes come and go — while the relays already here keep flowing until they
 * end or `--drain-grace` runs out. The signaling clients connected here are told to move to
 * other nodes (docs/signaling.md "Draining"); the node waits for them to leave as for the relays.
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
  /**
   * Tells the signaling clients connected here to move to other nodes; how many were told (0:
   * none here, or nowhere to go). Absent without the signal role.
   */
  readonly moveClients?: () => number;
  /** Signaling clients still connected here. */
  readonly clients?: () => number;
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
  private starting: Promise<void> | undefined;
  /** Signaling clients told to move (the drain waits for them to leave). */
  private told = 0;

  constructor(opts: DrainOptions) {
    this.opts = opts;
  }

  /** Marks the node draining (registry, readiness) and starts sending allocations elsewhere. */
  start(): Promise<void> {
    this.starting ??= this.begin();
    return this.starting;
  }

  private async begin(): Promise<void> {
    await this.opts.membership.drain();
    // Marked draining first: the lists the clients get leave this node out.
    this.told = this.opts.moveClients?.() ?? 0;
    this.choose();
    this.timer = setInterval(() => this.choose(), this.opts.intervalMs);
    this.timer.unref();
  }

  /**
   * Resolves once no allocation is left here and the signaling clients told to move have left,
   * or the grace has run out, whichever is first (at once with a grace of 0).
   */
  async settled(): Promise<void> {
    const until = Date.now() + this.opts.graceSec * 1000;
    // The clients told to move are known once the start has run.
    await this.starting?.catch(() => undefined);
    for (;;) {
      const left = await this.opts.allocations().catch(() => 0);
      const clients = this.told > 0 ? this.opts.clients?.() ?? 0 : 0;
      if (left === 0 && clients === 0) return;
      const remaining = until - Date.now();
      if (remaining <= 0) {
        this.opts.log.info({ allocations: left, signalingClients: clients }, 'drain grace over; stopping with relays or signaling clients still here');
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
