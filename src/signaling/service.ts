/**
 * The service side of MQTT signaling, the same for both brokers:
 *
 * - embedded (aedes): the broker asks `authorizePublish` before it forwards anything. A refused
 *   message is dropped and its sender gets an `error` on its own topic; nothing is forwarded.
 * - external (Mosquitto, EMQX): the broker's ACL enforces topic rights and delivers directly; the
 *   service sees each message once across all signaling nodes (shared subscription) via
 *   `observe`, tracks the flow, and answers refusals with an `error` (the message itself may
 *   already have reached the peer: the broker forwards without asking).
 *
 * Both run the same checks in the same order (see `check`), share the session cache, presence,
 * de-duplication and flow tracking, and answer `session` requests on p2p/signal/server.
 */
import { randomUUID } from 'node:crypto';
import { allowsDevice, type ClientClaims, type ClientRole, type TokenVerifier } from '../auth/token.ts';
import type { Logger } from '../log.ts';
import { devicesOnline, signalingDuplicatesTotal, signalingErrorsTotal } from '../metrics/metrics.ts';
import type { SessionActions, SessionOffer } from '../session/actions.ts';
import type { SessionStore } from '../session/store.ts';
import { mayPublish, type AclRule } from './acl.ts';
import { Deduplicator } from './dedup.ts';
import {
  P2pdError, badMessage, deviceOffline, forbidden, forgedFrom, internalError, sessionClosed, sessionNotFound, sessionRequired,
  type SignalingError,
} from '../errors.ts';
import { FlowTracker, type SessionFacts } from './flow.ts';
import { parseMessage, serverError, type MessageHints, type SignalMessage } from './message.ts';
import { PresenceTracker } from './presence.ts';
import { DeviceWaker } from './wake.ts';
import {
  PRESENCE_OFFLINE, PRESENCE_ONLINE, SERVER_ID, ownTopic, parseTopic, presenceTopic, type ParsedTopic,
} from './topics.ts';

/** How the service sends: the embedded broker's in-process publish or an MQTT client's. */
export interface SignalingPublisher {
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }): Promise<void>;
}

/** An authenticated connection of the embedded broker. */
export interface Sender {
  readonly id: string;
  readonly role: ClientRole;
  readonly claims: ClientClaims;
  readonly rules: readonly AclRule[];
}

export interface SignalingServiceOptions {
  readonly store: SessionStore;
  /**
   * The session creation of `POST /v1/sessions` (session/actions.ts), so both doors follow the
   * same rules and give the same session object; the service checks first what only it can check
   * (who asks, the device's presence).
   */
  readonly createSession: SessionActions['create'];
  /** Verifies the token a `session` request carries behind an external broker. */
  readonly verifier: TokenVerifier;
  readonly log: Logger;
  readonly presence?: PresenceTracker;
  readonly nowMs?: () => number;
  /** Window in which a repeated (from, msgId) is a retry. */
  readonly dedupWindowMs?: number;
  /**
   * Sleeping devices (`--wake-timeout`, `--wake-webhook`): a session for an offline device waits
   * for it to wake (wake.ts) instead of DEVICE_OFFLINE at once. Absent: no waiting.
   */
  readonly wake?: { readonly timeoutMs: number; readonly webhook?: string | undefined } | undefined;
}

interface CachedSession extends SessionFacts {
  closed: boolean;
}

/** Whom an error goes to. */
interface Party {
  readonly role: ClientRole;
  readonly id: string;
}

const SESSION_CACHE_MAX = 200_000;
const REPLY_CACHE_MAX = 20_000;

export class SignalingService {
  readonly presence: PresenceTracker;
  /** Wakes sleeping devices for new sessions (undefined when --wake-timeout is 0). */
  readonly waker: DeviceWaker | undefined;
  private readonly store: SessionStore;
  private readonly createSession: SessionActions['create'];
  private readonly verifier: TokenVerifier;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly dedup: Deduplicator;
  private readonly flow: FlowTracker;
  /** Participants of sessions (they never change) and whether closed (kept by store updates). */
  private readonly sessions = new Map<string, CachedSession>();
  /** Answers to session requests by (from, msgId): a retried request gets the same session. */
  private readonly replies = new Map<string, Promise<string | undefined>>();
  private publisher: SignalingPublisher | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly pending = new Set<Promise<unknown>>();
  /** Offers of session requests this node published (an external broker hands them back once). */
  private readonly delivered = new Set<string>();
  /** Messages this node let through (embedded) or tracked (external), and refused. */
  readonly stats = { forwarded: 0, refused: 0 };

  constructor(opts: SignalingServiceOptions) {
    this.store = opts.store;
    this.createSession = opts.createSession;
    this.verifier = opts.verifier;
    this.log = opts.log.child({ role: 'signal' });
    this.nowMs = opts.nowMs ?? Date.now;
    this.presence = opts.presence ?? new PresenceTracker();
    this.dedup = new Deduplicator({ windowMs: opts.dedupWindowMs ?? 120_000, nowMs: this.nowMs });
    this.flow = new FlowTracker({ store: this.store, log: this.log, nowMs: this.nowMs });
    this.waker = opts.wake === undefined || opts.wake.timeoutMs <= 0 ? undefined : new DeviceWaker({
      presence: this.presence, timeoutMs: opts.wake.timeoutMs, webhook: opts.wake.webhook, log: this.log, nowMs: this.nowMs,
      publish: (topic, payload, o) => (this.publisher ? this.publisher.publish(topic, payload, o) : Promise.reject(new Error('no publisher'))),
    });
    this.unsubscribe.push(
      this.store.onUpdate((u) => {
        const cached = this.sessions.get(u.sessionId);
        if (cached) cached.closed = u.status === 'closed';
        else if (u.status !== 'closed') this.cache({ sessionId: u.sessionId, appId: u.appId, deviceId: u.deviceId, createdAt: Math.floor(u.at / 1000), closed: false });
      }),
      this.presence.onChange(() => devicesOnline.set(this.presence.onlineCount)),
    );
  }

  setPublisher(p: SignalingPublisher): void {
    this.publisher = p;
  }

  /** For the HTTP API: true/false when known, undefined while presence is still loading. */
  isDeviceOnline(deviceId: string): boolean | undefined {
    return this.presence.isDeviceOnline(deviceId);
  }

  /**
   * Embedded broker: decides on one publish of an authenticated client before it is forwarded.
   * Returns false to drop it (the sender has been answered with an error when it deserves one).
   * Never throws.
   */
  async authorizePublish(sender: Sender, topic: string, payload: Buffer, retain: boolean): Promise<boolean> {
    const receivedAt = this.nowMs();
    const self: Party = { role: sender.role, id: sender.id };
    const where = parseTopic(topic);
    if (where?.kind === 'presence') {
      if (!mayPublish(sender.rules, topic, retain)) return this.refuse(self, forbidden(`${sender.id} may not publish to ${topic}`), {});
      return this.presenceMessage(where.id, payload, self);
    }
    const parsed = parseMessage(payload);
    const hints: MessageHints = parsed.ok ? parsed.message : parsed.hints;
    if (where === undefined || !mayPublish(sender.rules, topic, retain)) {
      return this.refuse(self, forbidden(retain ? 'signaling messages may not be retained' : `${sender.id} may not publish to ${topic}`), hints);
    }
    if (!parsed.ok) return this.refuse(self, parsed.error, hints);
    const msg = parsed.message;
    if (msg.from !== sender.id) return this.refuse(self, forgedFrom(msg.from, sender.id), hints);
    if (msg.msgId !== undefined && this.dedup.has(msg.from, msg.msgId) && msg.type !== 'session') {
      signalingDuplicatesTotal.inc();
      return false;
    }
    if (where.kind === 'server') {
      this.background(this.sessionRequest(msg, self, sender.claims));
      return false;
    }
    const verdict = await this.check(msg, where, self, false);
    if (verdict instanceof Error) return this.refuse(self, verdict, hints);
    if ('refusal' in verdict) return this.refuse(verdict.to, verdict.refusal, hints, verdict.session);
    if (msg.msgId !== undefined) this.dedup.record(msg.from, msg.msgId);
    this.stats.forwarded++;
    this.background(this.flow.track(msg, verdict.session, receivedAt));
    return true;
  }

  /**
   * External broker: a message this node received through the shared subscription (or a
   * presence message, which every node receives). Never throws.
   */
  async observe(topic: string, payload: Buffer): Promise<void> {
    const receivedAt = this.nowMs();
    const where = parseTopic(topic);
    if (where === undefined) return;
    if (where.kind === 'presence') {
      this.presenceMessage(where.id, payload, undefined);
      return;
    }
    const parsed = parseMessage(payload);
    const hints: MessageHints = parsed.ok ? parsed.message : parsed.hints;
    if (hints.from === SERVER_ID) return; // our own answers on app/device topics
    // The broker does not say who published; the message's `from` on a peer topic is the opposite
    // role (apps publish to devices, devices to apps); on the server topic only apps ask.
    const claimed: Party | undefined = hints.from === undefined ? undefined : {
      role: where.kind === 'peer' && where.role === 'app' ? 'device' : 'app',
      id: hints.from,
    };
    if (!parsed.ok) {
      if (claimed) await this.refuse(claimed, parsed.error, hints);
      else signalingErrorsTotal.inc({ code: parsed.error.code });
      return;
    }
    const msg = parsed.message;
    const self = claimed as Party;
    // An offer this node delivered for a session request, coming back through the subscription.
    if (msg.type === 'offer' && msg.msgId !== undefined && this.delivered.delete(`${msg.from}\n${msg.msgId}`)) return;
    if (msg.msgId !== undefined && msg.type !== 'session' && !this.dedup.record(msg.from, msg.msgId)) {
      signalingDuplicatesTotal.inc();
      return;
    }
    if (where.kind === 'server') {
      await this.sessionRequest(msg, self, undefined);
      return;
    }
    const verdict = await this.check(msg, where, self, true);
    if (verdict instanceof Error) {
      await this.refuse(self, verdict, hints);
      return;
    }
    if ('refusal' in verdict) {
      await this.refuse(verdict.to, verdict.refusal, hints, verdict.session);
      return;
    }
    this.stats.forwarded++;
    await this.flow.track(msg, verdict.session, receivedAt);
  }

  /**
   * The checks after the topic ACL, for a message to a peer: the topic names the recipient, the
   * message names a session (only the service speaks about no session in particular), the
   * session exists, joins exactly these two, is open, and an offer's device is online.
   * Returns the session or the refusal, addressed to someone else than the claimed sender when
   * the refusal says who really sent it. A refusal carries `session` only when the sender was
   * shown to belong to it: only then may it enter that session's trace.
   */
  private async check(msg: SignalMessage, where: Extract<ParsedTopic, { kind: 'server' | 'peer' }>, self: Party, external: boolean):
    Promise<SignalingError | { readonly session: CachedSession } | { readonly refusal: SignalingError; readonly to: Party; readonly session?: CachedSession }> {
    if (where.kind !== 'peer' || msg.type === 'session') {
      return badMessage(msg.type === 'session' ? 'session requests go to p2p/signal/server' : 'only session requests go to p2p/signal/server');
    }
    if (msg.to !== where.id) return badMessage(`"to" is ${JSON.stringify(msg.to)} but the message was published to ${where.role} ${JSON.stringify(where.id)}`);
    // A session-less message would reach any peer the topic ACL allows (a device reaches every app).
    if (msg.sessionId === '') return sessionRequired(msg.type);
    let session: CachedSession | undefined;
    try {
      session = await this.lookup(msg.sessionId);
    } catch (err) {
      this.log.error({ err, sessionId: msg.sessionId }, 'session lookup failed');
      return internalError();
    }
    if (session === undefined) return sessionNotFound(msg.sessionId);
    const app = self.role === 'app' ? msg.from : msg.to;
    const device = self.role === 'app' ? msg.to : msg.from;
    if (session.appId !== app || session.deviceId !== device) {
      const recipientInSession = self.role === 'app' ? session.deviceId === device : session.appId === app;
      if (external && recipientInSession) {
        // The broker does not say who published. A message to a session's party in that session
        // that names a stranger as sender was, in all likelihood, sent by the other party.
        const real: Party = self.role === 'app' ? { role: 'app', id: session.appId } : { role: 'device', id: session.deviceId };
        return { refusal: forgedFrom(msg.from, real.id), to: real };
      }
      return forbidden(`session ${msg.sessionId} is not between ${msg.from} and ${msg.to}`);
    }
    if (session.closed && (msg.type === 'offer' || msg.type === 'answer' || msg.type === 'candidate')) {
      return { refusal: sessionClosed(msg.sessionId), to: self, session };
    }
    if (msg.type === 'offer' && where.role === 'device' && this.presence.isDeviceOnline(where.id) === false) {
      return { refusal: deviceOffline(where.id), to: self, session };
    }
    return { session };
  }

  private async lookup(sessionId: string): Promise<CachedSession | undefined> {
    const hit = this.sessions.get(sessionId);
    if (hit) return hit;
    const s = await this.store.get(sessionId);
    if (!s) return undefined;
    const entry: CachedSession = { sessionId, appId: s.appId, deviceId: s.deviceId, createdAt: s.createdAt, closed: s.status === 'closed' };
    this.cache(entry);
    return entry;
  }

  private cache(entry: CachedSession): void {
    this.sessions.set(entry.sessionId, entry);
    if (this.sessions.size > SESSION_CACHE_MAX) {
      const oldest = this.sessions.keys().next();
      if (!oldest.done) this.sessions.delete(oldest.value);
    }
  }

  /** `online` / `offline` on a device's presence topic (its own, or its will). */
  private presenceMessage(deviceId: string, payload: Buffer, self: Party | undefined): boolean {
    const text = payload.toString('utf8').trim();
    if (text === PRESENCE_ONLINE || text === PRESENCE_OFFLINE) {
      this.presence.set(deviceId, text === PRESENCE_ONLINE);
      return true;
    }
    // An empty retained message clears the topic: the device is gone.
    if (text === '') {
      this.presence.set(deviceId, false);
      return true;
    }
    if (self) void this.refuse(self, badMessage('presence is "online" or "offline"'), {});
    return false;
  }

  /** A `session` request: check who asks and the device, create, answer on the app's topic. */
  private async sessionRequest(msg: SignalMessage, self: Party, connectionClaims: ClientClaims | undefined): Promise<void> {
    if (msg.type !== 'session') {
      await this.refuse(self, badMessage('only session requests go to p2p/signal/server'), msg);
      return;
    }
    const key = msg.msgId === undefined ? undefined : `${msg.from}\n${msg.msgId}`;
    const earlier = key === undefined ? undefined : this.replies.get(key);
    if (earlier) {
      // A retry: answer again with the same session instead of creating a second one.
      signalingDuplicatesTotal.inc();
      const reply = await earlier;
      if (reply !== undefined) await this.send(self, reply);
      return;
    }
    const work = this.createFor(msg, self, connectionClaims);
    if (key !== undefined) {
      this.replies.set(key, work);
      if (this.replies.size > REPLY_CACHE_MAX) {
        const oldest = this.replies.keys().next();
        if (!oldest.done) this.replies.delete(oldest.value);
      }
    }
    const reply = await work;
    if (reply === undefined && key !== undefined) this.replies.delete(key); // refused: a retry is checked afresh
    if (reply !== undefined) await this.send(self, reply);
  }

  /** Returns the encoded `session` answer, or undefined after answering with an error. */
  private async createFor(msg: SignalMessage, self: Party, connectionClaims: ClientClaims | undefined): Promise<string | undefined> {
    const payload = msg.payload as { deviceId: string; token?: string };
    let claims = connectionClaims;
    if (claims === undefined) {
      if (payload.token === undefined) {
        await this.refuse(self, badMessage('payload.token is required for session requests through this broker'), msg);
        return undefined;
      }
      try {
        claims = await this.verifier.verify(payload.token);
      } catch (err) {
        await this.refuse(self, err as P2pdError, msg);
        return undefined;
      }
      if (claims.sub !== msg.from) {
        await this.refuse(self, forgedFrom(msg.from, claims.sub), msg);
        return undefined;
      }
    }
    if (claims.role !== 'app') {
      await this.refuse(self, forbidden('only apps create sessions'), msg);
      return undefined;
    }
    if (!allowsDevice(claims, payload.deviceId)) {
      await this.refuse(self, forbidden(`the token does not allow device ${payload.deviceId}`), msg);
      return undefined;
    }
    // With a waker, the creation itself waits for a sleeping device (session/actions.ts).
    if (this.waker === undefined && this.presence.isDeviceOnline(payload.deviceId) === false) {
      await this.refuse(self, deviceOffline(payload.deviceId), msg);
      return undefined;
    }
    try {
      const receivedAt = this.nowMs();
      const session = await this.createSession({ claims, deviceId: payload.deviceId });
      this.log.info({ sessionId: session.sessionId, appId: claims.sub, deviceId: payload.deviceId }, 'session created over MQTT');
      const facts: CachedSession = { sessionId: session.sessionId, appId: claims.sub, deviceId: payload.deviceId, createdAt: Math.floor(receivedAt / 1000), closed: false };
      this.cache(facts);
      this.background(this.flow.track(msg, facts, receivedAt));
      return JSON.stringify({
        type: 'session', sessionId: session.sessionId, from: SERVER_ID, to: claims.sub, msgId: randomUUID(),
        ...(msg.msgId === undefined ? {} : { replyTo: msg.msgId }), payload: session, timestamp: this.nowMs(),
      });
    } catch (err) {
      if (!(err instanceof P2pdError)) this.log.error({ err }, 'session creation failed');
      await this.refuse(self, err instanceof P2pdError ? err : internalError(), msg);
      return undefined;
    }
  }

  /**
   * Tells a device a session to it just opened: a `session` from `server` on its own topic, with
   * the session as presented to the device (its ICE servers), so that its answer to the offer
   * needs no session read (docs/signaling.md "Session notices"). Never throws.
   */
  async announce(forDevice: { readonly sessionId: string; readonly deviceId: string; readonly appId: string }, offer?: SessionOffer): Promise<void> {
    const receivedAt = this.nowMs();
    await this.send({ role: 'device', id: forDevice.deviceId }, JSON.stringify({
      type: 'session', sessionId: forDevice.sessionId, from: SERVER_ID, to: forDevice.deviceId, msgId: randomUUID(),
      payload: forDevice, timestamp: this.nowMs(),
    }));
    if (offer !== undefined) await this.deliverOffer(forDevice, offer, receivedAt);
  }

  /**
   * The app's first offer, sent with its session request (docs/client.md "Setup time"): delivered
   * after the notice, on the device's topic, as the app's own `offer` message, through what an
   * offer over MQTT goes through after the gate (the session's creation checked the app and the
   * device): validation, de-duplication under the app's msgId, flow tracking, the trace.
   */
  private async deliverOffer(session: { readonly sessionId: string; readonly deviceId: string; readonly appId: string }, offer: SessionOffer, receivedAt: number): Promise<void> {
    const payload: Record<string, unknown> = { type: 'offer', sdp: offer.sdp };
    if (offer.natType !== undefined) payload.natType = offer.natType;
    if (offer.iceTransportPolicy !== undefined) payload.iceTransportPolicy = offer.iceTransportPolicy;
    const text = JSON.stringify({
      type: 'offer', sessionId: session.sessionId, from: session.appId, to: session.deviceId, msgId: offer.msgId,
      payload, timestamp: receivedAt,
    });
    const parsed = parseMessage(Buffer.from(text));
    if (!parsed.ok) {
      // The app sends the offer again over MQTT when no answer comes, where the refusal is told.
      this.log.info({ sessionId: session.sessionId, code: parsed.error.code }, 'offer of a session request not delivered');
      return;
    }
    this.dedup.record(session.appId, offer.msgId);
    this.delivered.add(`${session.appId}\n${offer.msgId}`);
    if (this.delivered.size > REPLY_CACHE_MAX) this.delivered.delete(this.delivered.values().next().value as string);
    this.stats.forwarded++;
    const facts: CachedSession = { sessionId: session.sessionId, appId: session.appId, deviceId: session.deviceId, createdAt: Math.floor(receivedAt / 1000), closed: false };
    this.cache(facts);
    this.background(this.flow.track(parsed.message, facts, receivedAt));
    await this.send({ role: 'device', id: session.deviceId }, text);
  }

  /**
   * Answers a refused message with an `error` on the sender's own topic. Returns false (dropped).
   * The refusal enters a session's trace only when `session` says the sender belongs to it: a
   * stranger naming someone's sessionId must not write into (and evict) that session's events.
   */
  private async refuse(to: Party, err: P2pdError | SignalingError, hints: MessageHints, session?: CachedSession): Promise<false> {
    signalingErrorsTotal.inc({ code: err.code });
    this.stats.refused++;
    const body = serverError(to.id, { code: err.code, message: err.message, ...(hints.type === undefined ? {} : { type: hints.type.slice(0, 32) }) }, {
      sessionId: hints.sessionId, replyTo: hints.msgId, nowMs: this.nowMs(),
    });
    this.log.debug({ code: err.code, to: to.id, sessionId: hints.sessionId }, 'signaling message refused');
    if (session !== undefined) {
      this.background(this.store.appendTrace(session.sessionId, {
        at: this.nowMs(), kind: 'signal', what: 'error', detail: { from: SERVER_ID, to: to.id, code: err.code, refused: hints.type },
      }));
    }
    await this.send(to, body);
    return false;
  }

  private async send(to: Party, payload: string): Promise<void> {
    if (!this.publisher) {
      this.log.error('signaling service has no publisher');
      return;
    }
    try {
      await this.publisher.publish(ownTopic(to.role, to.id), payload, { qos: 1 });
    } catch (err) {
      this.log.warn({ err, to: to.id }, 'could not send a signaling answer');
    }
  }

  /** Marks a device offline (e.g. its last connection closed without saying so) for everyone. */
  async markOffline(deviceId: string): Promise<void> {
    if (this.presence.isDeviceOnline(deviceId) !== true) return;
    this.presence.set(deviceId, false);
    await this.publisher?.publish(presenceTopic(deviceId), PRESENCE_OFFLINE, { qos: 1, retain: true });
  }

  private background(p: Promise<unknown>): void {
    this.pending.add(p);
    p.catch((err: unknown) => this.log.error({ err }, 'signaling task failed')).finally(() => this.pending.delete(p));
  }

  /** Waits for in-flight tracking and stops listening to the store. */
  async stop(): Promise<void> {
    this.waker?.stop();
    await Promise.allSettled([...this.pending]);
    for (const u of this.unsubscribe.splice(0)) u();
  }
}

