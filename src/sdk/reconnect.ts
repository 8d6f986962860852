/**
 * When and where the signaling client reconnects (docs/signaling.md "Finding a node"): the
 * signaling URLs the service lists, nearest first, tried in turn — each attempt after a failure
 * or a lost connection goes to the next one — after a wait of exponential backoff with full
 * jitter: uniform in [0, min(maxMs, baseMs · 2^n)) for the n-th attempt in a row. The jitter is
 * what keeps the clients of a node that died from all coming back in the same instant (a
 * reconnection storm): they spread over the first `baseMs`, and those that fail again over twice
 * that. A successful connection starts the count again.
 *
 * A node that answers CONNACK 3 (server unavailable) is alive and busy: it has as many logins in
 * flight as it runs at once (docs/signaling.md "Logins in flight") and refused this one before any
 * work. Such a refusal is no reason to wait longer and longer: the next URL is tried after a wait
 * of its own backoff, which starts at a quarter of the base and stops at twice it (`busy()`), and
 * the backoff of failures does not grow. A node's clients that all come back at once thus spread
 * over the other nodes' login slots within seconds instead of backing off past their failover bound.
 */
import type { Clock } from './clock.ts';

export interface BackoffOptions {
  /** The first wait's upper bound (the n-th: baseMs · 2^n), ms. */
  readonly baseMs: number;
  /** No wait is longer, ms. */
  readonly maxMs: number;
  /** Uniform in [0, 1) (Math.random; tests hand in their own). */
  readonly random?: () => number;
}

/** Full-jitter exponential backoff. */
export class Backoff {
  readonly baseMs: number;
  private readonly maxMs: number;
  readonly random: () => number;
  private n = 0;

  constructor(opts: BackoffOptions) {
    this.baseMs = Math.max(1, opts.baseMs);
    this.maxMs = Math.max(this.baseMs, opts.maxMs);
    this.random = opts.random ?? Math.random;
  }

  /** Attempts since the last success. */
  get attempts(): number {
    return this.n;
  }

  /** The upper bound of the next wait. */
  get ceilingMs(): number {
    // 2^n overflows nothing that matters: capped long before.
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.n, 30));
  }

  /** The wait before the next attempt (and counts it). */
  next(): number {
    const ms = Math.floor(this.random() * this.ceilingMs);
    this.n++;
    return ms;
  }

  reset(): void {
    this.n = 0;
  }
}

/** MQTT.js speaks these; a client keeps to the family of the URL it was given (a browser: WebSocket only). */
const WS = new Set(['ws:', 'wss:']);
const TCP = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:']);
const familyOf = (url: string): Set<string> | undefined => {
  try {
    const p = new URL(url).protocol;
    return WS.has(p) ? WS : TCP.has(p) ? TCP : undefined;
  } catch {
    return undefined;
  }
};

/**
 * The URLs to try, in order: the service's list (one URL per node, of this client's transport)
 * and the URL the client was first given (a load balancer, say), unless the list has it.
 */
export class SignalingUrls {
  private readonly first: string;
  private readonly family: Set<string> | undefined;
  private list: string[];
  /** The URL of the connection (or the attempt) now. */
  private inUse: string;
  /** URLs that failed since the last success (open() gives up once every one has). */
  private readonly failed = new Set<string>();

  constructor(first: string) {
    this.first = first;
    this.family = familyOf(first);
    this.list = [first];
    this.inUse = first;
  }

  get current(): string {
    return this.inUse;
  }

  get all(): readonly string[] {
    return this.list;
  }

  /**
   * Takes the service's list (`signaling` of a session answer or of GET /v1/signaling): per node
   * the first URL of this client's transport. The URL in use stays in use until it fails.
   */
  use(servers: readonly { readonly urls: readonly string[] }[]): void {
    const picked: string[] = [];
    for (const s of servers) {
      if (!Array.isArray(s?.urls)) continue;
      const url = s.urls.find((u) => typeof u === 'string' && this.family !== undefined && familyOf(u) === this.family);
      if (url !== undefined && !picked.includes(url)) picked.push(url);
    }
    if (picked.length === 0) return;
    this.list = picked.includes(this.first) ? picked : [...picked, this.first];
  }

  /** The URL in use failed (or its connection was lost): the next one in the list (the nearest when it is not listed). */
  advance(): string {
    this.failed.add(this.inUse);
    const i = this.list.indexOf(this.inUse);
    this.inUse = this.list[(i + 1) % this.list.length] as string;
    return this.inUse;
  }

  /** Every other URL has failed since the last success: the one in use is the last to try. */
  get lastChance(): boolean {
    return this.list.every((u) => u === this.inUse || this.failed.has(u));
  }

  succeeded(): void {
    this.failed.clear();
  }
}

export interface ReconnectorOptions {
  readonly clock: Clock;
  readonly backoff: Backoff;
  /** After a busy refusal (CONNACK 3); by default base / 4 up to 2 × base of `backoff`. */
  readonly busyBackoff?: Backoff;
  readonly urls: SignalingUrls;
  /** Starts a connection attempt to `url`; the owner then calls connected() or lost(). */
  readonly attempt: (url: string) => void;
  /** Leaves the node cleanly (an MQTT DISCONNECT: no will), then calls `then` (for move()). */
  readonly leave?: (then: () => void) => void;
  /** Uniform in [0, 1) (Math.random; tests hand in their own). */
  readonly random?: () => number;
}

/** Schedules the attempts: one at a time, each to the next URL after its jittered wait. */
export class Reconnector {
  private readonly opts: ReconnectorOptions;
  private readonly busyBackoff: Backoff;
  private timer: unknown;
  private stopped = false;
  private isMoving = false;

  constructor(opts: ReconnectorOptions) {
    this.opts = opts;
    const base = opts.backoff.baseMs;
    this.busyBackoff = opts.busyBackoff ?? new Backoff({ baseMs: Math.max(1, Math.floor(base / 4)), maxMs: 2 * base, random: opts.backoff.random });
  }

  /** An attempt is waiting for its turn. */
  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  /** A move is under way: the connection's end is its own doing, not a loss. */
  get moving(): boolean {
    return this.isMoving;
  }

  /**
   * The node drains and asked its clients to move (docs/signaling.md "Draining"): after a wait
   * uniform in [0, spreadMs) — a draining node's clients spread over it instead of all leaving
   * at once — the owner leaves the node cleanly, and the next URL is tried at once. The
   * connection stays up through the wait.
   */
  move(spreadMs: number): void {
    if (this.stopped || this.isMoving || this.timer !== undefined || this.opts.leave === undefined) return;
    const leave = this.opts.leave;
    this.isMoving = true;
    const waitMs = Math.floor((this.opts.random ?? Math.random)() * Math.max(0, spreadMs));
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      leave(() => {
        this.isMoving = false;
        if (!this.stopped) this.opts.attempt(this.opts.urls.advance());
      });
    }, waitMs);
  }

  /** The connection (or an attempt) ended: the next attempt, to the next URL, after a wait. */
  lost(): void {
    this.retry(this.opts.backoff);
  }

  /** The attempt got CONNACK 3 (a busy node): the next URL, after a short wait that does not grow the failures' backoff. */
  busy(): void {
    this.retry(this.busyBackoff);
  }

  private retry(backoff: Backoff): void {
    if (this.stopped || this.isMoving || this.timer !== undefined) return;
    const url = this.opts.urls.advance();
    const waitMs = backoff.next();
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.opts.attempt(url);
    }, waitMs);
  }

  connected(): void {
    this.opts.backoff.reset();
    this.busyBackoff.reset();
    this.opts.urls.succeeded();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
