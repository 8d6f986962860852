/**
 * The node's live relay ports, known to every worker (peerPolicy.ts lets data go to an own
 * address only at one of them). The book of ports (reservations.ts) tells of each port an
 * allocation takes or gives back; with workers, the book is in the primary, which sends the
 * changes to every worker once per event-loop turn, and a worker that starts asks for the whole
 * set (`turn-sync`). A port counts as live from its grant until its release, a few milliseconds
 * longer than its socket (each ChannelData to an own address checks again, so a dead port is
 * dropped from then on). Ports are told as the book's slots (pool × 65536 + port: one pool per
 * relay address).
 */
import type { TurnToWorker } from './ipc.ts';
import { POOL_SLOTS } from './reservations.ts';

type LivePortsMessage = Extract<TurnToWorker, { t: 'turn-live-ports' }>;

/** Primary side: mirrors the book's live ports and sends what changed. */
export class LivePortFeed {
  private readonly live: Uint8Array;
  private readonly changes = new Map<number, boolean>();
  private readonly broadcast: (m: TurnToWorker) => void;
  private scheduled = false;
  private readonly flushNow = (): void => this.flush();

  /** `pools`: the node's relay addresses (the book's pools). */
  constructor(broadcast: (m: TurnToWorker) => void, pools = 1) {
    this.broadcast = broadcast;
    this.live = new Uint8Array(POOL_SLOTS * pools);
  }

  /** The book's listener (Reservations' `onPortChange`). */
  readonly onChange = (port: number, live: boolean): void => {
    this.live[port] = live ? 1 : 0;
    this.changes.set(port, live);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  };

  /** Every live port, for a worker that starts (it replaces what the worker had). */
  snapshot(): LivePortsMessage {
    const live: number[] = [];
    for (let s = 0; s < this.live.length; s++) if (this.live[s] === 1) live.push(s);
    return { t: 'turn-live-ports', reset: true, live, dead: [] };
  }

  private flush(): void {
    this.scheduled = false;
    if (this.changes.size === 0) return;
    const live: number[] = [];
    const dead: number[] = [];
    for (const [p, l] of this.changes) (l ? live : dead).push(p);
    this.changes.clear();
    this.broadcast({ t: 'turn-live-ports', reset: false, live, dead });
  }
}

/** What a worker's live-port table is written through (PeerPolicy's `livePorts` and `setLivePort`). */
export interface LivePortTable {
  readonly livePorts: Uint8Array;
  setLivePort(slot: number, live: boolean): void;
}

/** Worker side: applies a `turn-live-ports` message to the policy's table. */
export function applyLivePorts(table: LivePortTable, m: LivePortsMessage): void {
  if (m.reset) {
    const live = new Set(m.live);
    const ports = table.livePorts;
    for (let s = 0; s < ports.length; s++) if (ports[s] === 1 && !live.has(s)) table.setLivePort(s, false);
  }
  for (const p of m.live) table.setLivePort(p, true);
  for (const p of m.dead) table.setLivePort(p, false);
}
