/**
 * The camera's side of UDP hole punching (docs/lab.md "The conntrack clash, and what the camera does about it").
 *
 * Between two NATs that keep one mapping per socket (RFC 4787 §4.1 endpoint-independent mapping)
 * but filter by address, or by address and port (§5), a direct path exists (RFC 5128 §3.3). A
 * Linux NAT still loses it when a connectivity check from the camera reaches the app's NAT before
 * the app has sent anything to the camera: the NAT records that check (conntrack, UNREPLIED), and
 * when the app's own check leaves a moment later its usual mapping would clash with the record, so
 * the NAT gives it a new port. The mapping has turned port-dependent for this peer, the camera's
 * NAT drops what comes from the new port, and ICE falls back to TURN. The same happens at the
 * camera's NAT when the app's check arrives there first.
 *
 * The app may be a browser, whose ICE nobody can change, so the camera orders the first packets:
 * 1. to each public address the app offers (srflx, or a public host address), it sends one
 *    datagram with a small IP TTL from its ICE socket: it opens the camera's NAT toward that
 *    address and dies in the internet before reaching the app's NAT (a low TTL, RFC 5128 §3.5);
 * 2. it tells the app its own server-reflexive candidate only once that is done (or after
 *    `gateMs`), so the app's first check cannot reach the camera's NAT before the punch;
 * 3. it keeps the app's srflx candidates from its own ICE agent, so its own checks cannot reach
 *    the app's NAT first: the app's check comes through the opened NAT, ICE learns the app's
 *    address from it (a peer-reflexive candidate, RFC 8445 §7.3.1.3) and answers with a triggered
 *    check, which the app's NAT lets in as a reply. After `releaseMs` without a path the withheld
 *    candidates are handed to ICE all the same.
 *
 * When the camera's own NAT gives a new port per destination (symmetric), punching cannot help and
 * the app's checks never arrive; its own checks are what may work (toward a cone NAT), so nothing
 * is held and nothing withheld. Pure logic over injected sockets and timers (holePunch.test.ts).
 */
import type { CandidateInit } from './rtc.ts';

/** What the peer connection offers for a punch: false when it has no socket for `address` yet. */
export type PunchSend = (address: string, port: number, ttl: number) => boolean;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const DEFAULT_PUNCH_TTL = 2;
const GATE_MS = 1000;
const RELEASE_MS = 3000;
const UNKNOWN_RELEASE_MS = 1000;

/** How this side's NAT maps, from the SDK's own verdict (natDetect.ts names). */
export type Mapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export function mappingOf(natType: string | undefined): Mapping {
  switch (natType) {
    case 'open internet': case 'full cone': case 'restricted cone': case 'port-restricted cone': case 'cone':
      return 'endpoint-independent';
    case 'symmetric': case 'symmetric UDP firewall':
      return 'endpoint-dependent';
    default:
      return 'unknown';
  }
}

export interface ParsedCandidate {
  readonly transport: string;
  readonly address: string;
  readonly port: number;
  readonly type: string;
}

/** The fields of an ICE candidate line (RFC 8839 §5.1) this module needs. */
export function parseCandidate(line: string): ParsedCandidate | undefined {
  const f = line.replace(/^a=/, '').replace(/^candidate:/, '').trim().split(/\s+/);
  const typ = f.indexOf('typ');
  if (f.length < 8 || typ < 0) return undefined;
  const port = Number(f[5]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { transport: (f[2] ?? '').toLowerCase(), address: f[4] ?? '', port, type: f[typ + 1] ?? '' };
}

/** A public IPv4 address: what a NAT maps to, and where a punch can go. */
export function isPublicIpv4(a: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (!m) return false;
  const [x, y] = [Number(m[1]), Number(m[2])];
  if ([x, y, Number(m[3]), Number(m[4])].some((o) => o > 255)) return false;
  return !(x === 0 || x === 10 || x === 127 || x >= 224 || (x === 100 && y >= 64 && y < 128)
    || (x === 169 && y === 254) || (x === 172 && y >= 16 && y < 32) || (x === 192 && y === 168));
}

export interface HolePuncherOptions {
  readonly mapping: Mapping;
  readonly punch: PunchSend;
  /** Hands one of our candidates (or the end of them) to the app. */
  readonly sendLocal: (c: CandidateInit | null) => void;
  /** Hands one of the app's candidates (or the end of them) to our ICE agent. */
  readonly addRemote: (c: CandidateInit | null) => void;
  /** IP TTL of a punch (default 2: past this side's NAT, dead at the next router). 0: off. */
  readonly ttl?: number;
  readonly gateMs?: number;
  readonly releaseMs?: number;
  readonly timers?: Timers;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class HolePuncher {
  private readonly opts: HolePuncherOptions;
  private readonly timers: Timers;
  private readonly active: boolean;
  /** Our srflx candidates (and what followed them) not yet sent: the gate is closed. */
  private heldLocal: (CandidateInit | null)[] | undefined = [];
  private gateTimer: unknown;
  /** Public addresses of the app not yet punched (no socket yet). */
  private toPunch: ParsedCandidate[] = [];
  private readonly punched = new Set<string>();
  private withheld: CandidateInit[] = [];
  private releaseTimer: unknown;
  private done = false;
  /** Punches sent (for stats and tests). */
  punches = 0;

  constructor(opts: HolePuncherOptions) {
    this.opts = opts;
    this.timers = opts.timers ?? realTimers;
    this.active = (opts.ttl ?? DEFAULT_PUNCH_TTL) > 0 && opts.mapping !== 'endpoint-dependent';
    if (!this.active) this.heldLocal = undefined;
  }

  /** One of our candidates: srflx waits behind the gate; host and relay go at once. */
  local(c: CandidateInit | null): void {
    if (c !== null && parseCandidate(c.candidate)?.type === 'host') this.flushPunches(); // our socket is bound
    if (this.heldLocal === undefined) {
      this.opts.sendLocal(c);
      return;
    }
    const type = c === null ? 'end' : parseCandidate(c.candidate)?.type;
    if (this.heldLocal.length === 0 && type !== 'srflx' && type !== 'end') {
      this.opts.sendLocal(c);
      return;
    }
    this.heldLocal.push(c);
    this.gateTimer ??= this.timers.setTimeout(() => this.openGate(), this.opts.gateMs ?? GATE_MS);
  }

  /** One of the app's candidates: public addresses are punched; srflx is kept from our ICE for now. */
  remote(c: CandidateInit | null): void {
    if (!this.active || this.done) {
      this.opts.addRemote(c);
      return;
    }
    if (c === null) {
      this.openGate(); // the app has no more addresses to punch toward
      this.opts.addRemote(null);
      return;
    }
    const p = parseCandidate(c.candidate);
    if (p === undefined || p.transport !== 'udp' || !isPublicIpv4(p.address) || (p.type !== 'srflx' && p.type !== 'host' && p.type !== 'prflx')) {
      this.opts.addRemote(c);
      return;
    }
    this.toPunch.push(p);
    this.flushPunches();
    if (p.type === 'host') {
      this.opts.addRemote(c);
      return;
    }
    this.withheld.push(c);
    const releaseMs = this.opts.releaseMs ?? (this.opts.mapping === 'unknown' ? UNKNOWN_RELEASE_MS : RELEASE_MS);
    this.releaseTimer ??= this.timers.setTimeout(() => this.release(), releaseMs);
  }

  /** A path works: nothing withheld is needed any more. */
  connected(): void {
    this.done = true;
    this.openGate();
    if (this.releaseTimer !== undefined) this.timers.clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    this.withheld = [];
  }

  close(): void {
    this.done = true;
    if (this.gateTimer !== undefined) this.timers.clearTimeout(this.gateTimer);
    if (this.releaseTimer !== undefined) this.timers.clearTimeout(this.releaseTimer);
    this.heldLocal = undefined;
    this.withheld = [];
  }

  private flushPunches(): void {
    const ttl = this.opts.ttl ?? DEFAULT_PUNCH_TTL;
    const left: ParsedCandidate[] = [];
    for (const p of this.toPunch) {
      const key = `${p.address}:${p.port}`;
      if (this.punched.has(key)) continue;
      if (this.opts.punch(p.address, p.port, ttl)) {
        this.punched.add(key);
        this.punches++;
      } else {
        left.push(p);
      }
    }
    this.toPunch = left;
    if (this.punched.size > 0) this.openGate();
  }

  private openGate(): void {
    if (this.gateTimer !== undefined) this.timers.clearTimeout(this.gateTimer);
    this.gateTimer = undefined;
    const held = this.heldLocal;
    this.heldLocal = undefined;
    for (const c of held ?? []) this.opts.sendLocal(c);
  }

  private release(): void {
    this.releaseTimer = undefined;
    const withheld = this.withheld;
    this.withheld = [];
    this.done = true;
    for (const c of withheld) this.opts.addRemote(c);
  }
}
