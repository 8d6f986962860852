/**
 * The offer/answer exchange of both peers. The app's Negotiator (docs/signaling.md "Delivery")
 * sends each offer (again every OFFER_RESEND_MS until answered) under one msgId for
 * SENDS_PER_MSG_ID sends, which the service de-duplicates, then under a fresh one, which the
 * device answers with the answer it gave; an answer names the msgId it answers (`replyTo`), so
 * one to an older offer is ignored. Trickled candidates are held on both sides of the exchange:
 * ours until the offer has left, the device's until its answer is applied. `negotiate` resolves
 * once the answer is applied. The device's Answerer answers each viewer's offers (below). Both
 * send candidates as candidatePayload.
 */
import type { Clock } from './clock.ts';
import { SdkError, asSdkError } from './errors.ts';
import { isRelayCandidate, withoutRelayCandidates } from './icePolicy.ts';
import type { CandidateInit, RtcPeer, SdpInit } from './rtc.ts';
import type { SignalMessage } from './signaling.ts';
import type { Waiters } from './waiters.ts';

export const OFFER_RESEND_MS = 1500;
/** Sends of one offer under one msgId before a fresh msgId is used. */
export const SENDS_PER_MSG_ID = 2;

/** A `candidate` payload (docs/signaling.md): an empty candidate is the end of candidates (RFC 8838 §8.2). */
export function candidatePayload(c: CandidateInit | null): Record<string, unknown> {
  return c === null ? { candidate: '' } : { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null };
}

/**
 * Trickled candidates held while one side of the exchange is not ready (from the start): held until `open`, which
 * hands back what was held and lets the rest pass; `shut` holds again keeping what is held,
 * `reset` holds again dropping it (candidates of an earlier offer).
 */
class Held<T> {
  private items: T[] | undefined = [];

  /** True when `item` was held (not to be used now). */
  hold(item: T): boolean {
    if (this.items === undefined) return false;
    this.items.push(item);
    return true;
  }

  shut(): void {
    this.items ??= [];
  }

  reset(): void {
    this.items = [];
  }

  open(): T[] {
    const held = this.items ?? [];
    this.items = undefined;
    return held;
  }
}

export interface NegotiatorOptions {
  readonly peer: Pick<RtcPeer, 'createOffer' | 'setLocalDescription' | 'setRemoteDescription' | 'addIceCandidate' | 'signalingState'>;
  /** Who answers (answers from anyone else are ignored). */
  readonly remoteId: string;
  /** Sends one signaling message to the device. */
  readonly send: (type: 'offer' | 'candidate', payload: Record<string, unknown>, opts: { msgId?: string }) => Promise<void>;
  readonly newMsgId: () => string;
  /** iceTransportPolicy `direct` (icePolicy.ts): asked of the device, relayed candidates dropped. */
  readonly direct: boolean;
  readonly waiters: Waiters;
  readonly clock: Clock;
  readonly closed: () => boolean;
  readonly onOfferSent: () => void;
  readonly onAnswer: () => void;
  readonly warn: (err: SdkError) => void;
}

interface PendingOffer {
  readonly sdp: string;
  readonly iceRestart: boolean;
  /** msgIds this offer went out under (answers name one in replyTo). */
  readonly ids: Set<string>;
  msgId: string;
  sends: number;
  answered: boolean;
  timer: unknown;
  /** Our setLocalDescription of this offer (werift gathers inside it). */
  readonly applied: Promise<void>;
  /** Sends it (again) and schedules the next send. */
  resend: () => void;
}

/**
 * The first offer, made before the session existed (its peer had no ICE servers yet) and, when
 * `sent`, already gone with the session request under `msgId` (docs/client.md "Setup time").
 */
export interface PreparedOffer {
  readonly offer: SdpInit;
  readonly msgId: string;
  readonly sent: boolean;
}

export class Negotiator {
  private readonly opts: NegotiatorOptions;
  private readonly clock: Clock;
  private pending: PendingOffer | undefined;
  /** The device's, until its answer is applied; ours, until the offer has left. */
  private readonly remote = new Held<CandidateInit>();
  private readonly local = new Held<CandidateInit | null>();

  constructor(opts: NegotiatorOptions) {
    this.opts = opts;
    this.clock = opts.clock;
  }

  /**
   * Creates and sends an offer (retrying), resolves once its answer is applied. With `prepared`
   * the offer is that one; one the session request carried counts as its first send.
   */
  async negotiate(iceRestart: boolean, deadline: number, prepared?: PreparedOffer): Promise<void> {
    const { peer, waiters } = this.opts;
    this.clearTimer();
    this.local.reset();
    const offer = prepared?.offer ?? await peer.createOffer({ iceRestart });
    // werift gathers inside setLocalDescription (STUN and TURN: a round trip or two); the offer
    // carries no candidates, so it leaves now and the candidates trickle after it.
    const applied = peer.setLocalDescription(offer);
    applied.catch(() => undefined); // awaited below, after the offer went out
    this.remote.shut();
    const pending: PendingOffer = { sdp: offer.sdp, iceRestart, ids: new Set(), msgId: prepared?.msgId ?? this.opts.newMsgId(), sends: 0, answered: false, timer: undefined, applied, resend: () => send() };
    this.pending = pending;
    const send = (): void => {
      if (this.opts.closed() || this.pending !== pending || pending.answered) return;
      if (pending.sends >= SENDS_PER_MSG_ID) {
        pending.msgId = this.opts.newMsgId();
        pending.sends = 0;
      }
      pending.sends++;
      pending.ids.add(pending.msgId);
      const payload: Record<string, unknown> = { type: 'offer', sdp: pending.sdp };
      if (iceRestart) payload.iceRestart = true;
      if (this.opts.direct) payload.iceTransportPolicy = 'direct';
      this.opts.onOfferSent();
      this.opts.send('offer', payload, { msgId: pending.msgId })
        .catch((err: unknown) => this.opts.warn(asSdkError(err, 'SIGNALING_UNAVAILABLE')));
      this.flushLocal();
      pending.timer = this.clock.setTimeout(send, OFFER_RESEND_MS);
    };
    if (prepared?.sent === true) {
      // It left with the session request: the answer may be on its way already.
      pending.sends = 1;
      pending.ids.add(pending.msgId);
      this.flushLocal();
      pending.timer = this.clock.setTimeout(send, OFFER_RESEND_MS);
    } else send();
    try {
      await applied;
      await waiters.waitFor(() => this.pending !== pending, deadline, iceRestart ? 'the answer to an ICE restart' : 'the device\'s answer');
    } finally {
      if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
      if (this.pending === pending) this.pending = undefined;
    }
  }

  /** The device's answer (to this offer or, ignored, to an older one). */
  async answer(m: SignalMessage): Promise<void> {
    const pending = this.pending;
    if (!pending || pending.answered || m.from !== this.opts.remoteId) return;
    if (m.replyTo !== undefined && !pending.ids.has(m.replyTo)) return; // an answer to an older offer
    if (this.opts.peer.signalingState !== 'have-local-offer') {
      // The answer came before our own description was applied: werift gathers inside
      // setLocalDescription, which a lost STUN or TURN request makes longer than the answer's round
      // trip on a lossy link. Dropped, it cost the offer's resends: 3 s in the lab at 2 % loss.
      await pending.applied.catch(() => undefined);
      if (this.pending !== pending || pending.answered || this.opts.peer.signalingState !== 'have-local-offer') return;
    }
    const raw = typeof m.payload.sdp === 'string' ? m.payload.sdp : '';
    const sdp = this.opts.direct ? withoutRelayCandidates(raw) : raw;
    this.opts.onAnswer();
    pending.answered = true; // later copies of the answer (to retried offers) are ignored
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    try {
      await this.opts.peer.setRemoteDescription({ type: 'answer', sdp });
    } catch (err) {
      this.opts.waiters.failAll(new SdkError('DEVICE_ERROR', `the device's answer was not usable: ${(err as Error).message}`, { cause: err }));
      return;
    }
    for (const c of this.remote.open()) await this.addRemote(c);
    if (this.pending === pending) this.pending = undefined;
    this.opts.waiters.poke();
  }

  /** Whether a trickled candidate of the device's is one to use (not the end, not relayed under `direct`). */
  accepts(c: CandidateInit): boolean {
    if (typeof c.candidate !== 'string' || c.candidate === '') return false; // end of candidates: nothing to do
    return !(this.opts.direct && isRelayCandidate(c)); // a device that ignored `direct`
  }

  /** One of the device's candidates (accepted): held until the answer is applied. */
  async remoteCandidate(c: CandidateInit): Promise<void> {
    if (!this.remote.hold(c)) await this.addRemote(c);
  }

  /** One of ours (null: gathering is complete): held until the offer has left. */
  localCandidate(c: CandidateInit | null): void {
    if (!this.local.hold(c)) this.sendCandidate(c);
  }

  /** Sends the offer in flight again under a fresh msgId (signaling came back: it may have been lost). */
  resendFresh(): void {
    const pending = this.pending;
    if (!pending) return;
    this.clearTimer();
    pending.sends = SENDS_PER_MSG_ID;
    pending.resend();
  }

  close(): void {
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.pending?.timer !== undefined) this.clock.clearTimeout(this.pending.timer);
  }

  private async addRemote(c: CandidateInit): Promise<void> {
    try {
      await this.opts.peer.addIceCandidate(c);
    } catch {
      // A candidate of an earlier ICE generation (after a restart): harmless.
    }
  }

  private flushLocal(): void {
    for (const c of this.local.open()) this.sendCandidate(c);
  }

  private sendCandidate(c: CandidateInit | null): void {
    if (this.opts.closed()) return;
    this.opts.send('candidate', candidatePayload(c), {})
      .catch((err: unknown) => this.opts.warn(asSdkError(err, 'SIGNALING_UNAVAILABLE')));
  }
}

export interface AnswererOptions {
  /** Sends an `answer` (replying to the offer's msgId); the first send of each is not awaited. */
  readonly sendAnswer: (payload: Record<string, unknown>, replyTo: string | undefined) => Promise<void>;
  readonly sendCandidate: (c: CandidateInit | null) => void;
  /** Hands one of the app's candidates to the peer (or what stands before it, holePunch.ts). */
  readonly addRemote: (c: CandidateInit) => void;
  readonly warn: (err: SdkError) => void;
}

/**
 * The device's side of the exchange, for one viewer: each new offer is applied and answered (the
 * answer leaves before werift's gathering in setLocalDescription ends, the candidates trickle
 * after it); a repeated offer (the app re-sends under a fresh msgId) gets the answer already
 * given. Our candidates are held until the answer has left, the app's until it is applied.
 */
export class Answerer {
  private readonly opts: AnswererOptions;
  private lastOfferSdp: string | undefined;
  private lastAnswer: SdpInit | undefined;
  /** The app's, until the first offer is applied; ours, while an answer is being made. */
  private readonly remote = new Held<CandidateInit>();
  private readonly local = new Held<CandidateInit | null>();

  constructor(opts: AnswererOptions) {
    this.opts = opts;
  }

  /** When `sdp` is the offer already answered (retried: the answer may have been lost), that answer again. */
  answerAgain(sdp: string, msgId: string | undefined): Promise<void> | undefined {
    if (!this.lastAnswer || this.lastOfferSdp !== sdp) return undefined;
    return this.opts.sendAnswer({ ...this.lastAnswer }, msgId);
  }

  /**
   * Applies the offer and answers it; `attach` adds our media once the offer is applied. Returns
   * the error when the peer could not (the caller tells the app and closes the viewer).
   */
  async answer(peer: Pick<RtcPeer, 'setRemoteDescription' | 'createAnswer' | 'setLocalDescription'>, sdp: string, msgId: string | undefined, attach: () => void): Promise<{ error: unknown } | undefined> {
    let applied: Promise<void>;
    let answer: SdpInit;
    let early: CandidateInit[];
    try {
      this.local.shut();
      await peer.setRemoteDescription({ type: 'offer', sdp });
      // Later candidates are added at once; the ones held so far once the answer is applied.
      early = this.remote.open();
      attach();
      answer = await peer.createAnswer();
      // werift gathers inside setLocalDescription (STUN and TURN: a round trip or two); the
      // answer carries no candidates, so it leaves now and the candidates trickle after it.
      applied = peer.setLocalDescription(answer);
      applied.catch(() => undefined); // awaited below, after the answer went out
      this.lastOfferSdp = sdp;
      this.lastAnswer = answer;
    } catch (error) {
      return { error };
    }
    // Not waiting for the broker's PUBACK (a round trip): the candidates follow the answer at
    // once, and the app holds any that overtake it until the answer is applied.
    this.opts.sendAnswer({ type: 'answer', sdp: answer.sdp }, msgId)
      .catch((err: unknown) => this.opts.warn(asSdkError(err, 'SIGNALING_UNAVAILABLE')));
    for (const c of this.local.open()) this.opts.sendCandidate(c);
    try {
      await applied;
    } catch (error) {
      return { error };
    }
    for (const c of early) this.opts.addRemote(c);
    return undefined;
  }

  /** One of ours (null: gathering is complete): held while an answer is being made. */
  localCandidate(c: CandidateInit | null): void {
    if (!this.local.hold(c)) this.opts.sendCandidate(c);
  }

  /** One of the app's: held until the first offer is applied. */
  remoteCandidate(c: CandidateInit): void {
    if (!this.remote.hold(c)) this.opts.addRemote(c);
  }
}
