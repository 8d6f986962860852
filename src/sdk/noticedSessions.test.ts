import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_AGE_MS, MAX_NOTICES, NoticedSessions, noticeIceServers } from './noticedSessions.ts';

const ice = [{ urls: ['stun:1.2.3.4:3478'] }, { urls: ['turn:1.2.3.4:3478?transport=udp'], username: '9:s', credential: 'c' }];

test('a notice is used once, and not after MAX_AGE_MS', () => {
  const n = new NoticedSessions();
  n.put('s1', ice, 0);
  assert.deepEqual(n.take('s1', 10), ice);
  assert.equal(n.take('s1', 10), undefined, 'used once');
  n.put('s2', ice, 0);
  assert.equal(n.take('s2', MAX_AGE_MS + 1), undefined, 'too old');
  assert.equal(n.size, 0);
});

test('at most MAX_NOTICES are kept, the oldest go first', () => {
  const n = new NoticedSessions();
  for (let i = 0; i < MAX_NOTICES * 3; i++) n.put(`s${i}`, ice, i);
  assert.equal(n.size, MAX_NOTICES);
  assert.equal(n.take('s0', 0), undefined);
  assert.deepEqual(n.take(`s${MAX_NOTICES * 3 - 1}`, 0), ice);
});

test('noticeIceServers takes only well-formed ICE servers', () => {
  assert.deepEqual(noticeIceServers({ iceServers: ice }), ice);
  assert.deepEqual(noticeIceServers({ iceServers: [{ urls: 'stun:h:1' }] }), [{ urls: ['stun:h:1'] }]);
  for (const bad of [
    {}, { iceServers: [] }, { iceServers: 'stun:h' }, { iceServers: [null] }, { iceServers: [{ urls: [] }] },
    { iceServers: [{ urls: ['http://h'] }] }, { iceServers: [{ urls: ['stun:h'], username: 5 }] },
    { iceServers: [{ urls: ['stun:h'], credential: {} }] }, { iceServers: Array.from({ length: 17 }, () => ({ urls: ['stun:h'] })) },
  ]) assert.equal(noticeIceServers(bad as Record<string, unknown>), undefined, JSON.stringify(bad).slice(0, 80));
});

test('noticeIceServers never throws on random JSON', () => {
  const atoms = [null, 0, -1, 'stun:x', 'turn:y', '', true, [], {}];
  const random = (depth: number): unknown => {
    const r = Math.random();
    if (depth > 3 || r < 0.4) return atoms[Math.floor(Math.random() * atoms.length)];
    if (r < 0.7) return Array.from({ length: Math.floor(Math.random() * 4) }, () => random(depth + 1));
    return Object.fromEntries(['urls', 'username', 'credential', 'iceServers'].filter(() => Math.random() < 0.5).map((k) => [k, random(depth + 1)]));
  };
  for (let i = 0; i < 2000; i++) {
    const out = noticeIceServers({ iceServers: random(0) });
    if (out) for (const s of out) assert.ok(Array.isArray(s.urls) && s.urls.length > 0);
  }
});
