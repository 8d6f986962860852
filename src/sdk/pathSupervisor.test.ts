import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock, settle } from '../../test/helpers/fakeClock.ts';
import { sleepOn } from './clock.ts';
import { SdkError } from './errors.ts';
import { DISCONNECTED_GRACE_MS, FAILED_GRACE_MS, PathSupervisor, RESTART_ATTEMPT_MS } from './pathSupervisor.ts';
import type { PeerConnectionState } from './rtc.ts';
import { Waiters } from './waiters.ts';

/**
 * A supervisor over a fake peer: the test sets the peer's state; `restart` is an ICE restart the
 * device answers at once, after which the peer reaches `afterRestart`; `probe` is a ping answered
 * while `answering`.
 */
function rig(opts: { recoveryMs?: number; afterRestart?: PeerConnectionState } = {}) {
  const clock = fakeClock();
  const waiters = new Waiters(clock);
  const peer = { connectionState: 'new' as PeerConnectionState };
  let state: 'connecting' | 'connected' | 'reconnecting' | 'closed' = 'connecting';
  const log: string[] = [];
  const world = { afterRestart: opts.afterRestart ?? 'connected' as PeerConnectionState, answering: true, channelOpen: true, failure: undefined as SdkError | undefined };
  const setPeer = (s: PeerConnectionState): void => { peer.connectionState = s; sup.peerState(s); };
  const sup: PathSupervisor = new PathSupervisor({
    clock, waiters, peer,
    channelOpen: () => world.channelOpen,
    connected: () => state === 'connected',
    connecting: () => state === 'connecting',
    closed: () => state === 'closed',
    restart: async () => {
      log.push(`restart@${clock.now() - 1_000_000}`);
      if (world.failure) throw world.failure;
      queueMicrotask(() => setPeer(world.afterRestart));
    },
    probe: async (ms) => {
      if (world.answering) return 1;
      await sleepOn(clock, ms);
      throw new SdkError('TIMEOUT', 'the ping');
    },
    recoveryMs: opts.recoveryMs ?? 20_000,
    setupTimeoutMs: 20_000,
    onLost: () => { state = 'reconnecting'; log.push('lost'); },
    onRestored: async () => { state = 'connected'; log.push('restored'); },
    fail: (err, reason) => { state = 'closed'; log.push(`fail ${reason} ${err.code}`); },
  });
  const connect = (): void => { state = 'connected'; peer.connectionState = 'connected'; sup.up(); };
  return { clock, sup, peer, log, world, setPeer, connect, state: () => state };
}

test('setup: resolves once the peer is connected and the channel open', async () => {
  const { clock, sup, setPeer, world } = rig();
  world.channelOpen = false;
  let done = false;
  const up = sup.establish(clock.now() + 20_000).then(() => { done = true; });
  setPeer('connected');
  await settle();
  assert.equal(done, false, 'the channel is not open yet');
  world.channelOpen = true;
  setPeer('connected');
  await up;
});

test('setup: ICE failed for FAILED_GRACE_MS after the last candidate means one restart, then ICE_FAILED', async () => {
  const { clock, sup, setPeer, log } = rig({ afterRestart: 'failed' });
  const up = sup.establish(clock.now() + 20_000);
  const failed = assert.rejects(up, { code: 'ICE_FAILED', message: /no candidate pair worked/ });
  setPeer('failed');
  await clock.advance(FAILED_GRACE_MS - 500);
  sup.remoteCandidate(); // a late candidate: another grace from now
  await clock.advance(FAILED_GRACE_MS);
  assert.deepEqual(log, []);
  await clock.advance(20);
  assert.deepEqual(log, [`restart@${2 * FAILED_GRACE_MS - 500 + 10}`], 'the candidate\'s grace is over (re-checked 10 ms after it)');
  await clock.advance(FAILED_GRACE_MS + 20);
  await failed;
  assert.equal(log.length, 1, 'only one restart during setup');
});

test('setup: no path by the deadline is ICE_FAILED, not TIMEOUT', async () => {
  const { clock, sup } = rig();
  const failed = assert.rejects(sup.establish(clock.now() + 5000), { code: 'ICE_FAILED', message: /no working path within 20000 ms/ });
  await clock.advance(5000);
  await failed;
});

test('connected: disconnected for DISCONNECTED_GRACE_MS starts a recovery; a short blip does not', async () => {
  const { clock, connect, setPeer, log, state } = rig();
  connect();
  setPeer('disconnected');
  await clock.advance(DISCONNECTED_GRACE_MS - 1);
  setPeer('connected');
  await clock.advance(10);
  assert.deepEqual(log, []);
  setPeer('disconnected');
  await clock.advance(DISCONNECTED_GRACE_MS);
  assert.deepEqual(log, ['lost', `restart@${2 * DISCONNECTED_GRACE_MS + 9}`, 'restored']);
  assert.equal(state(), 'connected');
});

test('connected: ICE failed recovers at once; restarts repeat until recoveryMs, then ICE_FAILED', async () => {
  const { clock, connect, setPeer, log } = rig({ recoveryMs: 20_000, afterRestart: 'connecting' });
  connect();
  setPeer('failed');
  await settle();
  assert.deepEqual(log, ['lost', 'restart@0']);
  await clock.advance(RESTART_ATTEMPT_MS);
  assert.deepEqual(log.slice(2), [], 'the next attempt waits a pause');
  await clock.advance(1000);
  assert.deepEqual(log.slice(2), [`restart@${RESTART_ATTEMPT_MS + 1000}`]);
  await clock.advance(20_000);
  assert.deepEqual(log.slice(3), [`restart@${2 * RESTART_ATTEMPT_MS + 2000}`, 'fail recovery-failed ICE_FAILED']);
});

test('a restart that connects but whose ping is unanswered is not a recovery', async () => {
  const { clock, connect, setPeer, log, world } = rig({ recoveryMs: 10_000 });
  world.answering = false;
  connect();
  setPeer('failed');
  await clock.advance(10_000);
  assert.equal(log.at(-1), 'fail recovery-failed ICE_FAILED');
  assert.ok(!log.includes('restored'));
});

test('liveness: pings unanswered for livenessMs start a recovery; pongs hold it off', async () => {
  const { clock, sup, connect, log } = rig();
  connect();
  await clock.advance(4000);
  sup.pong();
  await clock.advance(4000);
  sup.checkLiveness(5000);
  sup.checkLiveness(0);
  assert.deepEqual(log, []);
  await clock.advance(1001);
  sup.checkLiveness(5000);
  await settle();
  assert.deepEqual(log.slice(0, 2), ['lost', 'restart@9001']);
});

test('errors heard while recovering: DEVICE_OFFLINE is what a failed recovery reports; PEER_GONE ends it at once', async () => {
  const offline = rig({ recoveryMs: 3000, afterRestart: 'connecting' });
  offline.connect();
  assert.equal(offline.sup.heard(new SdkError('DEVICE_OFFLINE', 'x')), false, 'not recovering: the app decides');
  offline.setPeer('failed');
  await settle();
  assert.equal(offline.sup.heard(new SdkError('DEVICE_OFFLINE', 'the device is offline')), true);
  await offline.clock.advance(3000);
  assert.equal(offline.log.at(-1), 'fail recovery-failed DEVICE_OFFLINE');

  const gone = rig({ afterRestart: 'connecting' });
  gone.connect();
  gone.setPeer('failed');
  await settle();
  gone.sup.heard(new SdkError('PEER_GONE', 'bye'));
  await settle();
  assert.deepEqual(gone.log, ['lost', 'restart@0', 'fail recovery-failed PEER_GONE']);

  const refused = rig();
  refused.world.failure = new SdkError('FORBIDDEN', 'no');
  refused.connect();
  refused.setPeer('failed');
  await settle();
  assert.deepEqual(refused.log, ['lost', 'restart@0', 'fail recovery-failed FORBIDDEN']);
});

test('recoveryMs 0: a lost path fails the connection at once; nothing runs before it is connected', async () => {
  const { connect, setPeer, log, sup } = rig({ recoveryMs: 0 });
  await sup.recover('too early');
  assert.deepEqual(log, [], 'still connecting: setup decides');
  connect();
  setPeer('failed');
  await settle();
  assert.deepEqual(log, ['fail ice-failed ICE_FAILED']);
});
