import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inboundVideo, percentile, selectedPair, PATH_SETTLE_MS, pathSettled } from './stats.ts';
import type { StatsEntry } from './rtc.ts';

const chromeRelay: StatsEntry[] = [
  { id: 'T01', type: 'transport', selectedCandidatePairId: 'CP2' },
  { id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'failed', nominated: false },
  { id: 'CP2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R2', state: 'succeeded', nominated: true, currentRoundTripTime: 0.0021, bytesSent: 10, bytesReceived: 20 },
  { id: 'L1', type: 'local-candidate', candidateType: 'host', address: '192.0.2.2', port: 5000, protocol: 'udp' },
  { id: 'L2', type: 'local-candidate', candidateType: 'relay', address: '127.0.0.1', port: 40000, protocol: 'udp' },
  { id: 'R2', type: 'remote-candidate', candidateType: 'host', address: 'fd00::2', port: 6000, protocol: 'udp' },
  { id: 'IT', type: 'inbound-rtp', kind: 'video', bytesReceived: 1234, packetsReceived: 9, packetsLost: 1, framesDecoded: 30, frameWidth: 640, frameHeight: 360, timestamp: 5 },
];

test('the selected pair comes from the transport, and a relay candidate at either end means relay', () => {
  const p = selectedPair(chromeRelay);
  assert.ok(p);
  assert.equal(p.path, 'relay');
  assert.equal(p.local, '127.0.0.1:40000/udp');
  assert.equal(p.remote, '[fd00::2]:6000/udp');
  assert.equal(p.rttMs, 2.1);
});

test('without a transport entry the nominated succeeded pair is used (host ↔ host is direct)', () => {
  const werift: StatsEntry[] = [
    { id: 'P', type: 'candidate-pair', localCandidateId: 'A', remoteCandidateId: 'B', state: 'succeeded', nominated: true },
    { id: 'A', type: 'local-candidate', candidateType: 'host', address: '192.0.2.2', port: 1 },
    { id: 'B', type: 'remote-candidate', candidateType: 'srflx', address: '198.51.100.7', port: 2 },
  ];
  assert.equal(selectedPair(werift)?.path, 'direct');
  assert.equal(selectedPair([]), undefined);
});

test('inbound video and percentiles', () => {
  const v = inboundVideo(chromeRelay);
  assert.equal(v?.framesDecoded, 30);
  assert.equal(v?.bytesReceived, 1234);
  assert.equal(inboundVideo([]), undefined);
  const xs = [5, 1, 4, 2, 3].sort((a, b) => a - b);
  assert.equal(percentile(xs, 50), 3);
  assert.equal(percentile(xs, 95), 5);
  assert.equal(percentile([], 50), undefined);
});

test('pathSettled: direct at once; relayed once no direct pair is still checked, or after the grace', () => {
  const cands = [
    { id: 'lh', type: 'local-candidate', candidateType: 'srflx' },
    { id: 'lr', type: 'local-candidate', candidateType: 'relay' },
    { id: 'rh', type: 'remote-candidate', candidateType: 'prflx' },
  ];
  const relayPair = { id: 'p1', type: 'candidate-pair', localCandidateId: 'lr', remoteCandidateId: 'rh', state: 'succeeded', nominated: true };
  const directPair = (state: string) => ({ id: 'p2', type: 'candidate-pair', localCandidateId: 'lh', remoteCandidateId: 'rh', state });
  const relayed = { path: 'relay', localType: 'relay', remoteType: 'prflx', local: '', remote: '', rttMs: undefined, bytesSent: 0, bytesReceived: 0 } as const;
  assert.equal(pathSettled([...cands, relayPair, directPair('in-progress')], { ...relayed, path: 'direct' }, 0), true);
  assert.equal(pathSettled([...cands, relayPair, directPair('in-progress')], relayed, 100), false, 'a direct pair is still being checked');
  assert.equal(pathSettled([...cands, relayPair, directPair('waiting')], relayed, PATH_SETTLE_MS), true, 'the grace is over');
  assert.equal(pathSettled([...cands, relayPair, directPair('failed')], relayed, 100), true, 'nothing direct left to try');
  assert.equal(pathSettled([...cands, relayPair, { ...directPair('in-progress'), localCandidateId: 'lr' }], relayed, 100), true, 'only relay pairs in progress');
  assert.equal(pathSettled([], undefined, 100), false);
});
