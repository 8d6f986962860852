import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HolePuncher, isPublicIpv4, mappingOf, parseCandidate, type Mapping, type Timers } from './holePunch.ts';
import type { CandidateInit } from './rtc.ts';

const cand = (address: string, port: number, type: string, transport = 'udp'): CandidateInit =>
  ({ candidate: `candidate:1 1 ${transport} 100 ${address} ${port} typ ${type}`, sdpMid: '0', sdpMLineIndex: 0 });

/** Fake time: timers fire only when the test advances the clock. */
function fakeTimers(): Timers & { advance(ms: number): void } {
  let now = 0;
  let seq = 0;
  const due = new Map<number, { at: number; fn: () => void }>();
  return {
    setTimeout(fn, ms) { const id = ++seq; due.set(id, { at: now + ms, fn }); return id; },
    clearTimeout(h) { due.delete(h as number); },
    advance(ms) {
      now += ms;
      for (const [id, t] of [...due].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at > now) continue;
        due.delete(id);
        t.fn();
      }
    },
  };
}

function rig(mapping: Mapping, opts: { socketReady?: boolean; ttl?: number } = {}) {
  const timers = fakeTimers();
  const log: string[] = [];
  let ready = opts.socketReady ?? true;
  const p = new HolePuncher({
    mapping, timers, ...(opts.ttl === undefined ? {} : { ttl: opts.ttl }),
    punch: (a, port, ttl) => { if (!ready) return false; log.push(`punch ${a}:${port} ttl ${ttl}`); return true; },
    sendLocal: (c) => log.push(`send ${c === null ? 'end' : parseCandidate(c.candidate)?.type}`),
    addRemote: (c) => log.push(`ice ${c === null ? 'end' : `${parseCandidate(c.candidate)?.type} ${parseCandidate(c.candidate)?.address}`}`),
  });
  return { p, log, timers, bind: () => { ready = true; } };
}

test('parseCandidate and isPublicIpv4 read what ICE sends', () => {
  assert.deepEqual(parseCandidate('candidate:842163049 1 udp 1677729535 11.2.0.2 48981 typ srflx raddr 10.2.0.2 rport 48981'),
    { transport: 'udp', address: '11.2.0.2', port: 48981, type: 'srflx' });
  assert.equal(parseCandidate('candidate:1 1 udp 1 x'), undefined);
  assert.equal(parseCandidate('candidate:1 1 udp 1 1.2.3.4 99999 typ host'), undefined);
  for (const a of ['10.1.0.2', '192.168.1.1', '172.20.0.1', '100.64.0.1', '127.0.0.1', '169.254.1.1', '224.0.0.1', '::1', 'x.local']) assert.equal(isPublicIpv4(a), false, a);
  for (const a of ['11.2.0.2', '8.8.8.8', '172.32.0.1', '100.128.0.1']) assert.equal(isPublicIpv4(a), true, a);
  assert.equal(mappingOf('port-restricted cone'), 'endpoint-independent');
  assert.equal(mappingOf('symmetric'), 'endpoint-dependent');
  assert.equal(mappingOf(undefined), 'unknown');
});

test('a cone camera punches the app\'s srflx first, then tells its own srflx, and keeps the app\'s srflx from ICE', () => {
  const { p, log, timers } = rig('endpoint-independent');
  p.local(cand('10.1.0.2', 5000, 'host'));
  p.local(cand('11.1.0.2', 5000, 'srflx')); // held: nothing punched yet
  p.local(cand('11.0.0.1', 6000, 'relay'));
  assert.deepEqual([...log], ['send host']);
  p.remote(cand('10.2.0.2', 7000, 'host'));
  p.remote(cand('11.2.0.2', 7000, 'srflx'));
  assert.deepEqual([...log], ['send host', 'ice host 10.2.0.2', 'punch 11.2.0.2:7000 ttl 2', 'send srflx', 'send relay']);
  p.remote(cand('11.0.0.1', 6001, 'relay'));
  assert.equal(log.at(-1), 'ice relay 11.0.0.1');
  p.connected();
  timers.advance(10_000);
  assert.ok(!log.includes('ice srflx 11.2.0.2'), 'never handed to ICE once a path works');
});

test('punches wait for the socket; the gate opens at the latest after gateMs; withheld srflx goes to ICE after releaseMs', () => {
  const { p, log, timers, bind } = rig('endpoint-independent', { socketReady: false });
  p.remote(cand('11.2.0.2', 7000, 'srflx'));
  assert.deepEqual([...log], []);
  bind();
  p.local(cand('10.1.0.2', 5000, 'host')); // the socket is bound: the punch goes before our first candidate
  assert.deepEqual([...log], ['punch 11.2.0.2:7000 ttl 2', 'send host']);

  const late = rig('endpoint-independent');
  late.p.local(cand('11.1.0.2', 5000, 'srflx'));
  late.p.local(null);
  late.timers.advance(999);
  assert.deepEqual([...late.log], []);
  late.timers.advance(1);
  assert.deepEqual([...late.log], ['send srflx', 'send end'], 'no app address came: our srflx goes after the gate time');

  timers.advance(2999);
  assert.ok(!log.includes('ice srflx 11.2.0.2'));
  timers.advance(1);
  assert.equal(log.at(-1), 'ice srflx 11.2.0.2');
});

test('the app\'s end of candidates opens the gate; an unknown mapping releases sooner', () => {
  const { p, log, timers } = rig('unknown');
  p.local(cand('11.1.0.2', 5000, 'srflx'));
  p.remote(null);
  assert.deepEqual([...log], ['send srflx', 'ice end']);
  const u = rig('unknown');
  u.p.remote(cand('11.2.0.2', 7000, 'srflx'));
  u.timers.advance(1000);
  assert.equal(u.log.at(-1), 'ice srflx 11.2.0.2');
  void timers;
});

test('a symmetric camera, or ttl 0, changes nothing: no punch, no hold, no withholding', () => {
  for (const r of [rig('endpoint-dependent'), rig('endpoint-independent', { ttl: 0 })]) {
    r.p.local(cand('11.1.0.2', 5000, 'srflx'));
    r.p.remote(cand('11.2.0.2', 7000, 'srflx'));
    assert.deepEqual([...r.log], ['send srflx', 'ice srflx 11.2.0.2']);
  }
});

test('TCP, IPv6, private and malformed candidates pass straight to ICE', () => {
  const { p, log } = rig('endpoint-independent');
  p.remote(cand('11.2.0.2', 9, 'host', 'tcp'));
  p.remote({ candidate: 'candidate:1 1 udp 1 2001:db8::1 7000 typ srflx' });
  p.remote({ candidate: 'garbage' });
  assert.equal(log.filter((l) => l.startsWith('ice')).length, 3);
  assert.equal(p.punches, 0);
});
