import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natTypeLabel } from '../signaling/flow.ts';
import { NAT_TYPES, mappingVerdict, natDetector, stunServers, type NatType } from './natDetect.ts';

const ICE = [{ urls: ['stun:192.0.2.1:3478', 'stun:192.0.2.2:3479'] }, { urls: 'turn:192.0.2.1:3478?transport=udp', username: 'u', credential: 'c' }];

test('the STUN servers of an iceServers list: plain stun: URLs in order, default port, IPv6, no repeats, no TURN', () => {
  assert.deepEqual(stunServers([
    ...ICE,
    { urls: ['stun:stun.example.org', 'stun:[2001:db8::1]:3480', 'stuns:192.0.2.9:5349', 'stun:192.0.2.1:3478'] },
  ]), [
    { host: '192.0.2.1', port: 3478 }, { host: '192.0.2.2', port: 3479 }, { host: 'stun.example.org', port: 3478 }, { host: '2001:db8::1', port: 3480 },
  ]);
});

test('the mapping test: the same mapped address from two servers is a cone, any difference symmetric', () => {
  assert.equal(mappingVerdict({ address: '192.0.2.1', port: 4000 }, { address: '192.0.2.1', port: 4000 }), 'cone');
  assert.equal(mappingVerdict({ address: '192.0.2.1', port: 4000 }, { address: '192.0.2.1', port: 4001 }), 'symmetric');
});

test('every value the SDK reports is its own nat_type_total label on the service', () => {
  for (const t of NAT_TYPES) assert.equal(natTypeLabel(t), t);
});

test('the detector runs its probe once per process, and concurrent callers share the run', async () => {
  let runs = 0;
  const d = natDetector(async (servers) => {
    runs++;
    assert.equal(servers.length, 2, 'two servers are enough');
    return 'full cone';
  });
  const [a, b] = await Promise.all([d.detect(ICE), d.detect(ICE)]);
  assert.deepEqual([a, b], ['full cone', 'full cone']);
  assert.equal(await d.detect([{ urls: 'stun:198.51.100.1:3478' }]), 'full cone');
  assert.equal(runs, 1);
});

test('an unknown verdict (a failing probe, or none to ask) is tried again only after retryUnknownMs', async () => {
  let clock = 0;
  let runs = 0;
  let answer: NatType | Error = new Error('no network');
  const d = natDetector(async () => {
    runs++;
    if (answer instanceof Error) throw answer;
    return answer;
  }, { nowMs: () => clock, retryUnknownMs: 60_000 });
  assert.equal(await d.detect([]), 'unknown', 'no STUN server: nothing to run');
  assert.equal(runs, 0);
  assert.equal(await d.detect(ICE), 'unknown');
  answer = 'symmetric';
  clock = 59_999;
  assert.equal(await d.detect(ICE), 'unknown');
  assert.equal(runs, 1);
  clock = 60_000;
  assert.equal(await d.detect(ICE), 'symmetric');
  assert.equal(runs, 2);
});

test('a probe past the bound is aborted and reads as unknown; a value outside the vocabulary too', async () => {
  let aborted = false;
  const slow = natDetector((_servers, signal) => new Promise((resolve) => {
    signal.addEventListener('abort', () => { aborted = true; resolve('full cone'); });
  }), { timeoutMs: 50 });
  assert.equal(await slow.detect(ICE), 'unknown');
  assert.ok(aborted, 'the probe was told to stop');
  const odd = natDetector(async () => 'carrier grade' as NatType);
  assert.equal(await odd.detect(ICE), 'unknown');
});
