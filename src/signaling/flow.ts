/**
 * Flow tracking: what each accepted signaling message does to its session and to the metrics.
 *
 * - every message: `signaling_messages_total{type}`, `signaling_latency_seconds` (sender's
 *   timestamp → receipt), one `signal` event in the session's trace, `updatedAt`/`lastSeenAt`;
 * - the first offer of a session: `p2p_connection_attempts_total`; offer→answer:
 *   `signaling_offer_answer_seconds`;
 * - keepalive `{state: "connected", path, setupMs, rttMs, natType}`: status `connected`, and once
 *   per session `p2p_connection_success_total`, `p2p_connections_total{path}`,
 *   `p2p_setup_seconds`; `rttMs` → `p2p_latency_seconds`; `natType` → `nat_type_total` once per
 *   peer; `disconnected` moves a connected session back to `connecting` (an ICE restart);
 * - bye: closes the session (reason `bye`).
 *
 * The "once" bookkeeping is per node: behind an external broker two nodes may each count one
 * outcome of the same session if its two peers' keepalives reach different nodes.
 */
import type { Logger } from '../log.ts';
import {
  natTypeTotal, p2pConnectionAttemptsTotal, p2pConnectionSuccessTotal, p2pConnectionsTotal, p2pLatencySeconds,
  p2pSetupSeconds, signalingLatencySeconds, signalingMessagesTotal, signalingOfferAnswerSeconds,
} from '../metrics/metrics.ts';
import type { TraceEvent } from '../session/model.ts';
import type { SessionStore } from '../session/store.ts';
import { Deduplicator } from './dedup.ts';
import type { SignalMessage } from './message.ts';

/**
 * Label values of nat_type_total: the classic types (nat/classify.ts), `cone` (what a mapping
 * test without a filtering test can tell, src/sdk/natDetect.ts), `unknown`, and `other` for
 * anything else. Matched ignoring case, `-` and `_` (`udp_blocked` is `UDP blocked`).
 */
export const NAT_TYPE_LABELS = [
  'open internet', 'full cone', 'restricted cone', 'port-restricted cone', 'symmetric',
  'symmetric UDP firewall', 'UDP blocked', 'cone', 'unknown',
] as const;

export function natTypeLabel(raw: string): string {
  const s = raw.trim().toLowerCase().replace(/[_-]+/g, ' ');
  for (const label of NAT_TYPE_LABELS) {
    if (label.toLowerCase().replace(/-/g, ' ') === s) return label;
  }
  return 'other';
}

/** Latencies beyond this come from a wrong sender clock, not from the network. */
const MAX_PLAUSIBLE_LATENCY_MS = 60_000;
/** Small negative latencies are clock skew between sender and service; counted as 0. */
const SKEW_TOLERANCE_MS = 1_000;

/** What the tracker needs to know of a session (the gate's cached view). */
export interface SessionFacts {
  readonly sessionId: string;
  readonly appId: string;
  readonly deviceId: string;
  /** Unix seconds. */
  readonly createdAt: number;
}

export interface FlowTrackerOptions {
  readonly store: SessionStore;
  readonly log: Logger;
  readonly nowMs?: () => number;
}

export class FlowTracker {
  private readonly store: SessionStore;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  /** sessionId → receipt of its (first pending) offer, for offer→answer. */
  private readonly offers = new Map<string, number>();
  /** (sessionId, fact) pairs counted once: attempt, success, nat:<peer>. */
  private readonly once = new Deduplicator({ windowMs: 24 * 3600_000, maxEntries: 300_000 });

  constructor(opts: FlowTrackerOptions) {
    this.store = opts.store;
    this.log = opts.log;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /** Records one accepted message. Never throws: store failures are logged and counted by the store. */
  async track(msg: SignalMessage, session: SessionFacts | undefined, receivedAtMs: number): Promise<void> {
    signalingMessagesTotal.inc({ type: msg.type });
    const latencyMs = receivedAtMs - msg.timestamp;
    if (latencyMs > -SKEW_TOLERANCE_MS && latencyMs < MAX_PLAUSIBLE_LATENCY_MS) signalingLatencySeconds.observe(Math.max(0, latencyMs) / 1000);
    if (session === undefined) return;
    const id = session.sessionId;
    try {
      const event = { at: receivedAtMs, kind: 'signal', what: msg.type, detail: traceDetail(msg) } as const;
      const nowSec = Math.floor(this.nowMs() / 1000);
      switch (msg.type) {
        case 'offer':
          this.countNatType(msg, id);
          if (this.once.record(id, 'attempt')) p2pConnectionAttemptsTotal.inc();
          if (!this.offers.has(id)) this.remember(id, receivedAtMs);
          await this.store.touch(id, event, nowSec);
          break;
        case 'answer': {
          this.countNatType(msg, id);
          const offeredAt = this.offers.get(id);
          if (offeredAt !== undefined) {
            this.offers.delete(id);
            signalingOfferAnswerSeconds.observe(Math.max(0, receivedAtMs - offeredAt) / 1000);
          }
          await this.store.touch(id, event, nowSec);
          break;
        }
        case 'candidate':
        case 'error':
          await this.store.touch(id, event, nowSec);
          break;
        case 'keepalive':
          await this.keepalive(msg, session, event, nowSec);
          break;
        case 'bye':
          this.offers.delete(id);
          await this.store.appendTrace(id, event);
          await this.store.close(id, 'bye', nowSec);
          break;
        case 'session':
          await this.store.appendTrace(id, event);
          break;
      }
    } catch (err) {
      this.log.warn({ err, sessionId: id, type: msg.type }, 'flow tracking failed');
    }
  }

  /**
   * nat_type_total counts each party of a session once, from the first message that tells its
   * type: a device's answer carries it (it knows it before it answers), so a session that ends
   * before the device's first keepalive arrives is counted all the same.
   */
  private countNatType(msg: SignalMessage, id: string): void {
    const natType = msg.type === 'offer' || msg.type === 'answer' || msg.type === 'keepalive' ? msg.payload.natType : undefined;
    if (natType !== undefined && this.once.record(id, `nat:${msg.from}`)) natTypeTotal.inc({ type: natTypeLabel(natType) });
  }

  private async keepalive(msg: Extract<SignalMessage, { type: 'keepalive' }>, session: SessionFacts, event: TraceEvent, nowSec: number): Promise<void> {
    const id = session.sessionId;
    const p = msg.payload;
    if (p.rttMs !== undefined) p2pLatencySeconds.observe(p.rttMs / 1000);
    this.countNatType(msg, id);
    if (p.state === 'connected') {
      await this.store.appendTrace(id, event);
      await this.store.update(id, { status: 'connected', updatedAt: nowSec, lastSeenAt: nowSec });
      // The path is the app's view: it is the controlling agent, whose nomination decides the
      // pair (RFC 8445 §8.1.1); a device may report an earlier pair the app then left.
      if (p.path !== undefined && msg.from === session.appId && this.once.record(id, 'path')) p2pConnectionsTotal.inc({ path: p.path });
      if (this.once.record(id, 'success')) {
        p2pConnectionSuccessTotal.inc();
        const setupMs = p.setupMs ?? this.nowMs() - session.createdAt * 1000;
        p2pSetupSeconds.observe(Math.max(0, setupMs) / 1000);
      }
      return;
    }
    if (p.state === 'disconnected') {
      await this.store.appendTrace(id, event);
      await this.store.update(id, { status: 'connecting', updatedAt: nowSec, lastSeenAt: nowSec });
      return;
    }
    await this.store.touch(id, event, nowSec);
  }

  private remember(sessionId: string, atMs: number): void {
    this.offers.set(sessionId, atMs);
    // Offers never answered must not pile up: keep the newest 100k.
    if (this.offers.size > 100_000) {
      const oldest = this.offers.keys().next();
      if (!oldest.done) this.offers.delete(oldest.value);
    }
  }
}

/** What the trace keeps of a message: who, which, how big; never the SDP itself. */
function traceDetail(msg: SignalMessage): Record<string, unknown> {
  const d: Record<string, unknown> = { from: msg.from, to: msg.to, timestamp: msg.timestamp };
  if (msg.msgId !== undefined) d.msgId = msg.msgId;
  switch (msg.type) {
    case 'offer':
    case 'answer':
      d.sdpBytes = msg.payload.sdp.length;
      break;
    case 'candidate': {
      const typ = /\btyp (\w+)/.exec(msg.payload.candidate);
      d.candidate = msg.payload.candidate === '' ? 'end-of-candidates' : (typ?.[1] ?? 'unknown');
      break;
    }
    case 'keepalive': {
      const { state, path, rttMs, setupMs, natType } = msg.payload;
      Object.assign(d, { state, path, rttMs, setupMs, natType });
      break;
    }
    case 'bye':
      if (msg.payload.reason !== undefined) d.reason = msg.payload.reason;
      break;
    case 'error':
      d.code = msg.payload.code;
      break;
    case 'session':
      break;
  }
  return d;
}
