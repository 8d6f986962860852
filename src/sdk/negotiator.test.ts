import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock, settle } from '../../test/helpers/fakeClock.ts';
import { Answerer, Negotiator, OFFER_RESEND_MS, SENDS_PER_MSG_ID, candidatePayload } from './negotiator.ts';
import type { CandidateInit, SdpInit } from './rtc.ts';
import type { SignalMessage } from './signaling.ts';
import { Waiters } from './waiters.ts';

const cand = (type: string, n = 1): CandidateInit => ({ candidate: `candidate:${n} 1 udp 100 192.0.2.${n} 500${n} typ ${type}`, sdpMid: '0', sdpMLineIndex: 0 });

/** A fake peer and signaling: what the negotiator sends, and what it did to the peer. */
function rig(opts: { direct?: boolean; badAnswer?: boolean; slowLocal?: Promise<void> } = {}) {
  const clock = fakeClock();
  const waiters = new Waiters(clock);
  const sent: Array<{ type: string; payload: Record<string, unknown>; msgId?: string }> = [];
  const peerLog: string[] = [];
  let offers = 0;
  let ids = 0;
  let closed = false;
  const peer = {
    signalingState: 'stable',
    async createOffer(o?: { iceRestart?: boolean }): Promise<SdpInit> { offers++; return { type: 'offer', sdp: `offer ${offers}${o?.iceRestart ? ' restart' : ''}` }; },
    async setLocalDescription(d: SdpInit) { await opts.slowLocal; peerLog.push(`local ${d.sdp}`); peer.signalingState = 'have-local-offer'; },
    async setRemoteDescription(d: SdpInit) {
      if (opts.badAnswer) throw new Error('bad sdp');
      peerLog.push(`remote ${d.sdp.trim()}`);
      peer.signalingState = 'stable';
    },
    async addIceCandidate(c: CandidateInit) { peerLog.push(`ice ${c.candidate.split(' ').at(-1)}`); },
  };
  const n = new Negotiator({
    peer, remoteId: 'cam-1', direct: opts.direct ?? false, waiters, clock, closed: () => closed,
    newMsgId: () => `m${++ids}`,
    send: async (type, payload, o) => { sent.push({ type, payload, ...(o.msgId ? { msgId: o.msgId } : {}) }); },
    onOfferSent: () => undefined, onAnswer: () => undefined, warn: () => undefined,
  });
  const answer = (replyTo: string | undefined, sdp = 'answer', from = 'cam-1'): Promise<void> =>
    n.answer({ type: 'answer', sessionId: 's', from, to: 'app', msgId: 'a', payload: { type: 'answer', sdp }, timestamp: 0, ...(replyTo === undefined ? {} : { replyTo }) } as SignalMessage);
  const offersSent = () => sent.filter((m) => m.type === 'offer');
  return { clock, waiters, sent, peerLog, n, answer, offersSent, close: () => { closed = true; waiters.close(); } };
}

test('an offer is re-sent until answered, under one msgId for SENDS_PER_MSG_ID sends, then a fresh one; any of them may be answered', async () => {
  const { clock, n, answer, offersSent } = rig();
  let done = false;
  const negotiated = n.negotiate(false, clock.now() + 20_000).then(() => { done = true; });
  await settle();
  assert.deepEqual(offersSent().map((m) => m.msgId), ['m1']);
  assert.equal(SENDS_PER_MSG_ID, 2);
  await clock.advance(OFFER_RESEND_MS);
  await clock.advance(OFFER_RESEND_MS);
  assert.deepEqual(offersSent().map((m) => m.msgId), ['m1', 'm1', 'm2']);
  assert.deepEqual(offersSent()[0]?.payload, { type: 'offer', sdp: 'offer 1' });
  await answer('m1'); // the first msgId is still one of this offer's
  await negotiated;
  assert.ok(done);
  await clock.advance(OFFER_RESEND_MS * 4);
  assert.equal(offersSent().length, 3, 'no send after the answer');
  assert.equal(clock.pending, 0);
});

test('an answer that comes while our setLocalDescription (werift\'s gathering) is still running is applied once it ends, not dropped', async () => {
  let gathered!: () => void;
  const { clock, n, answer, peerLog, offersSent } = rig({ slowLocal: new Promise<void>((r) => { gathered = r; }) });
  const negotiated = n.negotiate(false, clock.now() + 20_000);
  await settle();
  assert.equal(offersSent().length, 1, 'the offer left before gathering ended');
  const first = answer('m1', 'early');
  const copy = answer('m1', 'copy'); // a second copy, waiting too
  await settle();
  assert.deepEqual(peerLog, [], 'nothing applied yet');
  gathered();
  await Promise.all([first, copy]);
  assert.deepEqual(peerLog, ['local offer 1', 'remote early'], 'the answer applied once, after our description');
  await negotiated;
  await clock.advance(OFFER_RESEND_MS * 4);
  assert.equal(offersSent().length, 1, 'no resend: the answer was taken');
});

test('answers to an older offer, from another peer, or a second copy are ignored', async () => {
  const { clock, n, answer, peerLog } = rig();
  const negotiated = n.negotiate(true, clock.now() + 20_000);
  await settle();
  await answer('old');
  await answer('m1', 'answer', 'someone-else');
  assert.deepEqual(peerLog, ['local offer 1 restart']);
  await answer(undefined, 'first'); // no replyTo: taken
  await answer('m1', 'second');
  await negotiated;
  assert.deepEqual(peerLog, ['local offer 1 restart', 'remote first']);
});

test('our candidates wait for the offer to leave; the device\'s wait for its answer to be applied, in order', async () => {
  const { clock, n, answer, sent, peerLog } = rig();
  const negotiated = n.negotiate(false, clock.now() + 20_000);
  n.localCandidate(cand('host')); // before the offer left: held
  assert.equal(sent.length, 0);
  await settle();
  assert.deepEqual(sent.map((m) => m.type), ['offer', 'candidate']);
  n.localCandidate(null);
  assert.deepEqual(sent.at(-1)?.payload, { candidate: '' });
  assert.ok(n.accepts(cand('srflx', 2)));
  await n.remoteCandidate(cand('host', 1));
  await n.remoteCandidate(cand('srflx', 2));
  assert.deepEqual(peerLog, ['local offer 1']);
  await answer('m1');
  await negotiated;
  await n.remoteCandidate(cand('relay', 3));
  assert.deepEqual(peerLog, ['local offer 1', 'remote answer', 'ice host', 'ice srflx', 'ice relay']);
  assert.equal(n.accepts({ candidate: '' }), false, 'the end of candidates is nothing to add');
});

test('direct: the offer asks the device for no TURN; its relayed candidates and answer lines are dropped', async () => {
  const { clock, n, answer, offersSent, peerLog } = rig({ direct: true });
  const negotiated = n.negotiate(false, clock.now() + 20_000);
  await settle();
  assert.equal(offersSent()[0]?.payload.iceTransportPolicy, 'direct');
  assert.equal(n.accepts(cand('relay')), false);
  assert.equal(n.accepts(cand('host')), true);
  await answer('m1', 'v=0\r\na=candidate:1 1 udp 5 192.0.2.1 5000 typ relay\r\na=candidate:2 1 udp 9 192.0.2.2 5001 typ host\r\n');
  await negotiated;
  assert.deepEqual(peerLog, ['local offer 1', 'remote v=0\r\na=candidate:2 1 udp 9 192.0.2.2 5001 typ host']);
});

test('signaling back: the pending offer goes again at once under a fresh msgId', async () => {
  const { clock, n, offersSent, answer } = rig();
  const negotiated = n.negotiate(false, clock.now() + 20_000);
  await settle();
  n.resendFresh();
  assert.deepEqual(offersSent().map((m) => m.msgId), ['m1', 'm2']);
  await clock.advance(OFFER_RESEND_MS - 1);
  assert.equal(offersSent().length, 2, 'the resend timer started over');
  await clock.advance(1);
  assert.deepEqual(offersSent().map((m) => m.msgId), ['m1', 'm2', 'm2']);
  await answer('m2');
  await negotiated;
  n.resendFresh(); // nothing pending: nothing sent
  assert.equal(offersSent().length, 3);
});

test('an unusable answer fails the negotiation with DEVICE_ERROR; no answer fails it at the deadline; closing stops it', async () => {
  const bad = rig({ badAnswer: true });
  const failed = assert.rejects(bad.n.negotiate(false, bad.clock.now() + 20_000), { code: 'DEVICE_ERROR' });
  await settle();
  await bad.answer('m1');
  await failed;

  const slow = rig();
  const late = assert.rejects(slow.n.negotiate(false, slow.clock.now() + 5000), { code: 'TIMEOUT' });
  await slow.clock.advance(5000);
  await late;
  assert.equal(slow.clock.pending, 0);

  const closing = rig();
  const closed = assert.rejects(closing.n.negotiate(false, closing.clock.now() + 5000), { code: 'CLOSED' });
  await settle();
  closing.close();
  closing.n.close();
  await closed;
  await closing.clock.advance(OFFER_RESEND_MS);
  assert.equal(closing.offersSent().length, 1);
  closing.n.localCandidate(cand('host'));
  assert.equal(closing.sent.length, 1, 'nothing is sent once closed');
});

test('candidatePayload: the fields of docs/signaling.md, and an empty candidate for the end', () => {
  assert.deepEqual(candidatePayload({ candidate: 'candidate:1 1 udp 1 192.0.2.1 1 typ host' }), { candidate: 'candidate:1 1 udp 1 192.0.2.1 1 typ host', sdpMid: null, sdpMLineIndex: null });
  assert.deepEqual(candidatePayload(null), { candidate: '' });
});

/** The device's side: a fake peer whose setLocalDescription (werift's gathering) ends when the test says. */
function answerRig(opts: { failRemote?: boolean; failLocal?: boolean } = {}) {
  const log: string[] = [];
  let endGathering: (() => void) | undefined;
  let answers = 0;
  const peer = {
    async setRemoteDescription(d: SdpInit) { if (opts.failRemote) throw new Error('bad offer'); log.push(`remote ${d.sdp}`); },
    async createAnswer(): Promise<SdpInit> { answers++; return { type: 'answer', sdp: `answer ${answers}` }; },
    setLocalDescription(d: SdpInit) {
      log.push(`local ${d.sdp}`);
      return new Promise<void>((resolve, reject) => { endGathering = opts.failLocal ? () => reject(new Error('gathering failed')) : resolve; });
    },
  };
  const a = new Answerer({
    sendAnswer: async (payload, replyTo) => { log.push(`answer ${String(payload.sdp)} to ${replyTo}`); },
    sendCandidate: (c) => log.push(`send ${c === null ? 'end' : c.candidate.split(' ').at(-1)}`),
    addRemote: (c) => log.push(`ice ${c.candidate.split(' ').at(-1)}`),
    warn: () => undefined,
  });
  return { a, peer, log, gathered: () => endGathering?.() };
}

test('answering: the answer leaves before gathering ends; our candidates follow it, the app\'s wait until it is applied', async () => {
  const { a, peer, log, gathered } = answerRig();
  a.remoteCandidate(cand('host')); // overtook the offer
  let attached = 0;
  const done = a.answer(peer, 'offer 1', 'm1', () => { attached++; });
  a.localCandidate(cand('host'));
  await settle();
  a.localCandidate(cand('srflx'));
  a.remoteCandidate(cand('srflx', 2)); // the offer is applied: straight to ICE
  assert.deepEqual(log, ['remote offer 1', 'local answer 1', 'answer answer 1 to m1', 'send host', 'send srflx', 'ice srflx']);
  gathered();
  assert.equal(await done, undefined);
  assert.deepEqual(log.slice(6), ['ice host']);
  assert.equal(attached, 1);
});

test('a retried offer gets the answer already given; a new one (an ICE restart) a new answer', async () => {
  const { a, peer, log, gathered } = answerRig();
  assert.equal(a.answerAgain('offer 1', 'm1'), undefined, 'nothing answered yet');
  const first = a.answer(peer, 'offer 1', 'm1', () => undefined);
  await settle();
  gathered();
  await first;
  await a.answerAgain('offer 1', 'm2');
  assert.equal(log.at(-1), 'answer answer 1 to m2');
  assert.equal(a.answerAgain('offer 2', 'm3'), undefined);
  const restart = a.answer(peer, 'offer 2', 'm3', () => undefined);
  a.localCandidate(null); // held again until the new answer left
  await settle();
  assert.deepEqual(log.slice(-3), ['local answer 2', 'answer answer 2 to m3', 'send end']);
  gathered();
  assert.equal(await restart, undefined);
});

test('an offer the peer refuses, or a gathering that fails, is returned as the error', async () => {
  const bad = answerRig({ failRemote: true });
  const r = await bad.a.answer(bad.peer, 'offer', 'm1', () => undefined);
  assert.match(String((r?.error as Error).message), /bad offer/);
  assert.deepEqual(bad.log, []);

  const late = answerRig({ failLocal: true });
  const done = late.a.answer(late.peer, 'offer', 'm1', () => undefined);
  await settle();
  late.gathered();
  assert.match(String(((await done)?.error as Error).message), /gathering failed/);
  assert.ok(late.log.includes('answer answer 1 to m1'), 'the answer had left');
});

test('an offer that went with the session request is its first send: no second send at once, our candidates pass, the resend keeps its msgId', async () => {
  const { clock, n, answer, sent, offersSent, peerLog } = rig();
  const offer: SdpInit = { type: 'offer', sdp: 'early offer' };
  let done = false;
  const negotiated = n.negotiate(false, clock.now() + 20_000, { offer, msgId: 'r1', sent: true }).then(() => { done = true; });
  n.localCandidate(cand('host'));
  await settle();
  assert.deepEqual(offersSent(), [], 'nothing sent over signaling: the session request carried it');
  assert.deepEqual(peerLog, ['local early offer'], 'the prepared offer is applied, none created');
  n.localCandidate(cand('srflx', 2));
  assert.deepEqual(sent.filter((m) => m.type === 'candidate').map((m) => (m.payload.candidate as string).split(' ').at(-1)), ['host', 'srflx'], 'candidates go at once: the offer has left');
  await clock.advance(OFFER_RESEND_MS);
  assert.deepEqual(offersSent().map((m) => m.msgId), ['r1'], 'unanswered, it goes over signaling under the same msgId (the service de-duplicates)');
  await clock.advance(OFFER_RESEND_MS);
  assert.deepEqual(offersSent().map((m) => m.msgId), ['r1', 'm1'], 'then under a fresh one, which the device answers again');
  await answer('r1');
  await negotiated;
  assert.ok(done);
  assert.equal(clock.pending, 0);
});

test('a prepared offer the session request did not carry is sent at once under its msgId', async () => {
  const { clock, n, answer, offersSent } = rig();
  const negotiated = n.negotiate(false, clock.now() + 20_000, { offer: { type: 'offer', sdp: 'early offer' }, msgId: 'r1', sent: false });
  await settle();
  assert.deepEqual(offersSent().map((m) => [m.msgId, m.payload.sdp]), [['r1', 'early offer']]);
  await answer('r1');
  await negotiated;
  assert.equal(clock.pending, 0);
});
