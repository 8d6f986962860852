/**
 * The embedded default: sessions in this process's memory. Same semantics as the Redis store
 * (TTL from the last change, publish on status change, close exactly once), so the shared suite
 * runs unchanged on both. Expired records are dropped lazily and on every index walk.
 */
import type { Logger } from '../log.ts';
import { sessionsCreatedTotal } from '../metrics/metrics.ts';
import { sessionExists, tooManySessions, deviceBusy } from '../errors.ts';
import { TRACE_MAX_EVENTS, type Session, type SessionUpdate, type TraceEvent } from './model.ts';
import { countClosed, stateEvent, type CloseOptions, type CreateOptions, type SessionPatch, type SessionStore } from './store.ts';

interface Entry {
  session: Session;
  trace: TraceEvent[];
  expiresAtMs: number;
}

export interface MemorySessionStoreOptions {
  /** Clock in unix milliseconds (tests move it). */
  readonly nowMs?: () => number;
  readonly log?: Logger;
}

export class MemorySessionStore implements SessionStore {
  private readonly entries = new Map<string, Entry>();
  /**
   * Open session ids per app (`--max-sessions-per-app`) and per device (`--max-viewers`); ids
   * that closed or expired leave as they are met.
   */
  private readonly openByApp = new Map<string, Set<string>>();
  private readonly openByDevice = new Map<string, Set<string>>();
  private readonly listeners = new Set<(u: SessionUpdate) => void>();
  private readonly nowMs: () => number;
  private readonly log: Logger | undefined;

  constructor(opts: MemorySessionStoreOptions = {}) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log;
  }

  get healthy(): boolean {
    return true;
  }

  private live(sessionId: string): Entry | undefined {
    const e = this.entries.get(sessionId);
    if (e && e.expiresAtMs <= this.nowMs()) {
      this.drop(sessionId, e);
      return undefined;
    }
    return e;
  }

  /** Forgets an expired record, and its place in its app's and device's open counts. */
  private drop(sessionId: string, e: Entry): void {
    this.entries.delete(sessionId);
    this.leaveOpen(e.session);
  }

  private leaveOpen(s: Session): void {
    leave(this.openByApp, s.appId, s.sessionId);
    leave(this.openByDevice, s.deviceId, s.sessionId);
  }

  private publish(s: Session, atMs: number): void {
    const u: SessionUpdate = {
      sessionId: s.sessionId, status: s.status, turnNode: s.turnNode, at: atMs,
      deviceId: s.deviceId, appId: s.appId, reason: s.closeReason,
    };
    for (const l of this.listeners) {
      try {
        l(u);
      } catch (err) {
        this.log?.error({ err, sessionId: s.sessionId }, 'session update listener failed');
      }
    }
  }

  private static pushTrace(e: Entry, ev: TraceEvent): void {
    e.trace.push(ev);
    if (e.trace.length > TRACE_MAX_EVENTS) e.trace.splice(0, e.trace.length - TRACE_MAX_EVENTS);
  }

  async create(session: Session, opts: CreateOptions = {}): Promise<void> {
    if (this.live(session.sessionId)) throw sessionExists(session.sessionId);
    const max = opts.maxOpenPerApp ?? 0;
    const maxViewers = opts.maxOpenPerDevice ?? 0;
    if (session.status !== 'closed') {
      if (max > 0 && this.openCount(this.openByApp, session.appId) >= max) throw tooManySessions(session.appId, max);
      if (maxViewers > 0 && this.openCount(this.openByDevice, session.deviceId) >= maxViewers) throw deviceBusy(session.deviceId, maxViewers);
    }
    const at = this.nowMs();
    const e: Entry = { session: { ...session }, trace: [], expiresAtMs: at + session.ttl * 1000 };
    MemorySessionStore.pushTrace(e, stateEvent('new', session.status, at, ''));
    this.entries.set(session.sessionId, e);
    if (session.status !== 'closed') {
      join(this.openByApp, session.appId, session.sessionId);
      join(this.openByDevice, session.deviceId, session.sessionId);
    }
    sessionsCreatedTotal.inc();
    this.publish(e.session, at);
  }

  async get(sessionId: string): Promise<Session | undefined> {
    const e = this.live(sessionId);
    return e ? { ...e.session } : undefined;
  }

  async update(sessionId: string, patch: SessionPatch): Promise<Session | undefined> {
    const e = this.live(sessionId);
    if (!e) return undefined;
    const prev = e.session;
    if (prev.status === 'closed') return { ...prev };
    const next: Session = {
      ...prev,
      status: patch.status ?? prev.status,
      turnAllocation: patch.turnAllocation ?? prev.turnAllocation,
      turnNode: patch.turnNode ?? prev.turnNode,
      closeReason: patch.closeReason ?? prev.closeReason,
      updatedAt: patch.updatedAt,
      lastSeenAt: patch.lastSeenAt ?? prev.lastSeenAt,
    };
    const at = this.nowMs();
    e.session = next;
    e.expiresAtMs = at + next.ttl * 1000;
    if (next.status !== prev.status) {
      MemorySessionStore.pushTrace(e, stateEvent(prev.status, next.status, at, next.closeReason));
      if (next.status === 'closed') {
        countClosed(next.closeReason);
        this.leaveOpen(next);
      }
      this.publish(next, at);
    }
    return { ...next };
  }

  async close(sessionId: string, reason: string, now: number, opts: CloseOptions = {}): Promise<boolean> {
    const e = this.live(sessionId);
    if (!e || e.session.status === 'closed') return false;
    if (opts.ifLastSeenBefore !== undefined && e.session.lastSeenAt >= opts.ifLastSeenBefore) return false;
    const prev = e.session.status;
    const at = this.nowMs();
    e.session = { ...e.session, status: 'closed', closeReason: reason, updatedAt: now };
    e.expiresAtMs = at + e.session.ttl * 1000;
    MemorySessionStore.pushTrace(e, stateEvent(prev, 'closed', at, reason));
    countClosed(reason);
    this.leaveOpen(e.session);
    this.publish(e.session, at);
    return true;
  }

  async closeMany(sessionIds: readonly string[], reason: string, now: number, opts: CloseOptions = {}): Promise<string[]> {
    const closed: string[] = [];
    for (const id of sessionIds) if (await this.close(id, reason, now, opts)) closed.push(id);
    return closed;
  }

  async appendTrace(sessionId: string, event: TraceEvent): Promise<void> {
    const e = this.live(sessionId);
    if (e) MemorySessionStore.pushTrace(e, event);
  }

  async touch(sessionId: string, event: TraceEvent, nowSec: number): Promise<void> {
    await this.appendTrace(sessionId, event);
    await this.update(sessionId, { updatedAt: nowSec, lastSeenAt: nowSec });
  }

  async trace(sessionId: string): Promise<TraceEvent[]> {
    return [...(this.live(sessionId)?.trace ?? [])];
  }

  async findStale(beforeSec: number, limit: number): Promise<string[]> {
    const stale: Session[] = [];
    const now = this.nowMs();
    for (const [id, e] of this.entries) {
      if (e.expiresAtMs <= now) this.drop(id, e);
      else if (e.session.status !== 'closed' && e.session.lastSeenAt < beforeSec) stale.push(e.session);
    }
    stale.sort((a, b) => a.lastSeenAt - b.lastSeenAt);
    return stale.slice(0, limit).map((s) => s.sessionId);
  }

  async countOpen(): Promise<number> {
    let n = 0;
    const now = this.nowMs();
    for (const [id, e] of this.entries) {
      if (e.expiresAtMs <= now) this.drop(id, e);
      else if (e.session.status !== 'closed') n++;
    }
    return n;
  }

  /** An app's or a device's open sessions, dropping ids whose record expired (walks at most its cap). */
  private openCount(sets: Map<string, Set<string>>, owner: string): number {
    const open = sets.get(owner);
    if (!open) return 0;
    for (const id of open) this.live(id);
    return sets.get(owner)?.size ?? 0;
  }

  async countOpenForApp(appId: string): Promise<number> {
    return this.openCount(this.openByApp, appId);
  }

  async countOpenForDevice(deviceId: string): Promise<number> {
    return this.openCount(this.openByDevice, deviceId);
  }

  onUpdate(listener: (u: SessionUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async shutdown(): Promise<void> {
    this.listeners.clear();
  }
}

function join(sets: Map<string, Set<string>>, owner: string, sessionId: string): void {
  let open = sets.get(owner);
  if (!open) sets.set(owner, open = new Set());
  open.add(sessionId);
}

function leave(sets: Map<string, Set<string>>, owner: string, sessionId: string): void {
  const open = sets.get(owner);
  if (!open) return;
  open.delete(sessionId);
  if (open.size === 0) sets.delete(owner);
}
