import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import type { PathKind, StatsEntry } from './rtc.ts';
import { PATH_SETTLE_MS } from './stats.ts';
import { StatsSampler } from './statsSampler.ts';

const candidates: StatsEntry[] = [
  { id: 'lh', type: 'local-candidate', candidateType: 'srflx', address: '198.51.100.1', port: 1 },
  { id: 'lr', type: 'local-candidate', candidateType: 'relay', address: '203.0.113.1', port: 2 },
  { id: 'rh', type: 'remote-candidate', candidateType: 'host', address: '192.0.2.9', port: 3 },
];
const pairOf = (local: string, state = 'succeeded', rtt = 0.02): StatsEntry =>
  ({ id: `p-${local}`, type: 'candidate-pair', localCandidateId: local, remoteCandidateId: 'rh', state, nominated: state === 'succeeded', currentRoundTripTime: rtt });
const video = (bytes: number): StatsEntry => ({ id: 'v', type: 'inbound-rtp', kind: 'video', bytesReceived: bytes, packetsReceived: 1, packetsLost: 0 });

function rig() {
  const clock = fakeClock();
  let stats: StatsEntry[] = [];
  const heard: string[] = [];
  const sampler = new StatsSampler({
    peer: { getStats: async () => stats }, clock,
    onPath: (p: PathKind) => heard.push(`path ${p}`), onFinal: () => heard.push('final'),
  });
  return { clock, sampler, heard, set: (s: StatsEntry[]) => { stats = s; } };
}

test('the bitrate is the bytes between two samples over the time between them', async () => {
  const { clock, sampler, set } = rig();
  set([video(1000)]);
  assert.equal((await sampler.sample(true)).bitrateKbps, undefined);
  await clock.advance(1000);
  set([video(126_000)]);
  assert.equal((await sampler.sample(true)).bitrateKbps, 1000);
  assert.equal((await sampler.sample(true)).bitrateKbps, undefined, 'no time passed');
});

test('the path: each change once, only while connected; a direct path is final at once', async () => {
  const { sampler, heard, set } = rig();
  set([...candidates, pairOf('lh')]);
  await sampler.sample(false);
  assert.deepEqual(heard, []);
  sampler.connected();
  const s = await sampler.sample(true);
  await sampler.sample(true);
  assert.deepEqual(heard, ['path direct', 'final']);
  assert.equal(sampler.path, 'direct');
  assert.equal(sampler.iceRttMs, 20);
  assert.equal(s.pair?.local, '198.51.100.1:1/udp');
});

test('a relayed path is final once no direct pair is being checked, or PATH_SETTLE_MS after connecting', async () => {
  const { clock, sampler, heard, set } = rig();
  sampler.connected();
  set([...candidates, pairOf('lr'), pairOf('lh', 'in-progress')]);
  await sampler.refresh();
  assert.deepEqual(heard, ['path relay']);
  assert.equal(sampler.final, false);
  await clock.advance(PATH_SETTLE_MS);
  await sampler.sample(true);
  assert.deepEqual(heard, ['path relay', 'final']);

  const soon = rig();
  soon.sampler.connected();
  soon.set([...candidates, pairOf('lr'), pairOf('lh', 'failed')]);
  await soon.sampler.refresh();
  assert.deepEqual(soon.heard, ['path relay', 'final']);
});

test('ending: a known path not yet final is reported then; the last ICE round trip is kept', async () => {
  const { sampler, set } = rig();
  sampler.connected();
  set([...candidates, pairOf('lr'), pairOf('lh', 'in-progress')]);
  await sampler.refresh();
  set([]);
  await sampler.sample(true);
  assert.equal(sampler.iceRttMs, undefined, 'refresh does not read the round trip');
  set([...candidates, pairOf('lr', 'succeeded', 0.05), pairOf('lh', 'in-progress')]);
  await sampler.sample(true);
  set([]);
  await sampler.sample(true);
  assert.equal(sampler.iceRttMs, 50);
  assert.equal(sampler.end(), true);
  assert.equal(sampler.final, true);
  assert.equal(sampler.end(), false);
  const none = rig();
  assert.equal(none.sampler.end(), false, 'no path known: nothing to report');
});

test('refresh survives a peer whose stats fail', async () => {
  const clock = fakeClock();
  const sampler = new StatsSampler({ peer: { getStats: () => Promise.reject(new Error('closed')) }, clock, onPath: () => undefined, onFinal: () => undefined });
  await sampler.refresh();
  await assert.rejects(sampler.sample(true), /closed/);
});
