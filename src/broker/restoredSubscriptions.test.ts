import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestoredSubscriptions, type StoredSubscription } from './restoredSubscriptions.ts';

const own: StoredSubscription = { topic: 'p2p/signal/device/cam-1', qos: 1 };

function restored(opts: ConstructorParameters<typeof RestoredSubscriptions>[0] = {}): RestoredSubscriptions {
  return new RestoredSubscriptions(opts);
}

function login(r: RestoredSubscriptions, clientId: string, subs: readonly StoredSubscription[]): void {
  r.endRead(clientId, r.beginRead(clientId), subs);
}

test('covers a resubscription of exactly what the login read, and nothing else', () => {
  const r = restored();
  login(r, 'c1', [own, { topic: 'p2p/presence/cam-2', qos: 1 }]);
  assert.ok(r.covers('c1', [own]));
  assert.ok(r.covers('c1', [{ topic: 'p2p/presence/cam-2', qos: 1 }, own]));
  assert.equal(r.covers('c1', [{ ...own, qos: 0 }]), false, 'another QoS is written');
  assert.equal(r.covers('c1', [own, { topic: 'p2p/presence/cam-3', qos: 1 }]), false, 'a new topic is written');
  assert.equal(r.covers('c1', [{ ...own, nl: true }]), false, 'other options are written');
  assert.equal(r.covers('c1', [{ ...own, rh: 0 }]), false, 'an option stored missing is not the same as one given');
  assert.equal(r.covers('c1', []), false);
  assert.equal(r.covers('c2', [own]), false, 'another client id');
});

test('a change of the client\'s subscriptions (here or another node) drops what was read', () => {
  const r = restored();
  login(r, 'c1', [own]);
  r.forget('c1');
  assert.equal(r.covers('c1', [own]), false);
  assert.equal(r.size, 0);
});

test('a read that a change overtook is not remembered, nor one that found nothing', () => {
  const r = restored();
  const read = r.beginRead('c1');
  const other = r.beginRead('c1');
  r.forget('c1');
  r.endRead('c1', read, [own]);
  assert.equal(r.covers('c1', [own]), false, 'the removal came between the read and its answer');
  r.endRead('c1', other, [own]);
  assert.equal(r.covers('c1', [own]), false, 'every read under way was spoiled');
  const later = r.beginRead('c1');
  r.endRead('c1', later, [own]);
  assert.ok(r.covers('c1', [own]), 'a read after the change is good');
  login(r, 'c1', []);
  assert.equal(r.covers('c1', [own]), false, 'a newer login that found nothing replaces it');
  const failed = r.beginRead('c1');
  r.endRead('c1', failed, undefined);
  assert.equal(r.size, 0);
});

test('holds at most maxClients entries (the oldest go) and serves one ttlMs only', () => {
  let now = 0;
  const r = restored({ maxClients: 100, maxTopics: 2, ttlMs: 1000, nowMs: () => now });
  for (let i = 0; i < 10_000; i++) login(r, `c${i}`, [{ topic: `p2p/signal/device/d${i}`, qos: 1 }]);
  assert.equal(r.size, 100);
  assert.equal(r.covers('c0', [{ topic: 'p2p/signal/device/d0', qos: 1 }]), false, 'evicted: written again');
  assert.ok(r.covers('c9999', [{ topic: 'p2p/signal/device/d9999', qos: 1 }]));
  const three = [own, { topic: 'a/1', qos: 1 }, { topic: 'a/2', qos: 1 }];
  login(r, 'many', three);
  assert.equal(r.covers('many', [own]), false, 'more than maxTopics: not remembered');
  assert.equal(r.size, 100);
  now = 1001;
  assert.equal(r.covers('c9999', [{ topic: 'p2p/signal/device/d9999', qos: 1 }]), false, 'past its ttl');
  assert.equal(r.size, 99, 'and dropped');
});
