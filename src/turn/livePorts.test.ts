import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import type { TurnToWorker } from './ipc.ts';
import { applyLivePorts, LivePortFeed } from './livePorts.ts';
import { Reservations } from './reservations.ts';

const limits = { minPort: 40000, maxPort: 40009, maxAllocations: 0, userQuota: 0 };
const req = { quotaKey: 'k', families: [4] as const, evenPort: 'none' as const, token: undefined };

test('the book tells every worker, once per event-loop turn, which relay ports allocations hold', async () => {
  const sent: TurnToWorker[] = [];
  const feed = new LivePortFeed((m) => sent.push(m));
  const book = new Reservations(limits, feed.onChange);
  const worker = new Uint8Array(65536);
  const a = book.reserve(req, 1, 0);
  const b = book.reserve({ ...req, families: [4, 4] as const }, 2, 0);
  assert.ok(a.ok && b.ok);
  assert.equal(sent.length, 0, 'nothing sent within the turn');
  await turn();
  assert.equal(sent.length, 1);
  for (const m of sent) if (m.t === 'turn-live-ports') applyLivePorts(worker, m);
  for (const p of [...a.slots, ...b.slots]) assert.equal(worker[p], 1, `port ${p} live`);

  book.release(a.grant);
  book.releaseOwner(2); // a worker died: its ports go too
  await turn();
  for (const m of sent.slice(1)) if (m.t === 'turn-live-ports') applyLivePorts(worker, m);
  for (const p of [...a.slots, ...b.slots]) assert.equal(worker[p], 0, `port ${p} dead`);
});

test('a port held for a RESERVATION-TOKEN is live only once redeemed; a starting worker gets the whole set', async () => {
  const feed = new LivePortFeed(() => undefined);
  const book = new Reservations(limits, feed.onChange);
  const first = book.reserve({ ...req, evenPort: 'even+reserve' }, 1, 0);
  assert.ok(first.ok && first.token !== undefined);
  const held = first.slots[0]! + 1;
  const fresh = new Uint8Array(65536).fill(1); // stale state of a restarted worker
  applyLivePorts(fresh, feed.snapshot());
  assert.equal(fresh[first.slots[0]!], 1);
  assert.equal(fresh[held], 0, 'held, not live');
  assert.equal(fresh.reduce((n, v) => n + v, 0), 1, 'the snapshot replaces what the worker had');
  const second = book.reserve({ ...req, token: first.token }, 1, 0);
  assert.ok(second.ok);
  applyLivePorts(fresh, feed.snapshot());
  assert.equal(fresh[held], 1);
});
