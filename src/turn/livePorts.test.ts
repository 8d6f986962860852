import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import type { TurnToWorker } from './ipc.ts';
import { applyLivePorts, LivePortFeed } from './livePorts.ts';
import { Reservations } from './reservations.ts';

const limits = { minPort: 40000, maxPort: 40009, maxAllocations: 0, userQuota: 0 };
const req = { quotaKey: 'k', families: [4] as const, evenPort: 'none' as const, token: undefined };

/** A worker's table (PeerPolicy's shape), recording the ports it is told died. */
function table(ports = new Uint8Array(65536)): { livePorts: Uint8Array; dead: number[]; setLivePort(slot: number, live: boolean): void } {
  const dead: number[] = [];
  return {
    livePorts: ports,
    dead,
    setLivePort(slot, live) {
      if (ports[slot] === 1 && !live) dead.push(slot);
      ports[slot] = live ? 1 : 0;
    },
  };
}

test('the book tells every worker, once per event-loop turn, which relay ports allocations hold', async () => {
  const sent: TurnToWorker[] = [];
  const feed = new LivePortFeed((m) => sent.push(m));
  const book = new Reservations(limits, feed.onChange);
  const worker = table();
  const a = book.reserve(req, 1, 0);
  const b = book.reserve({ ...req, families: [4, 4] as const }, 2, 0);
  assert.ok(a.ok && b.ok);
  assert.equal(sent.length, 0, 'nothing sent within the turn');
  await turn();
  assert.equal(sent.length, 1);
  for (const m of sent) if (m.t === 'turn-live-ports') applyLivePorts(worker, m);
  for (const p of [...a.slots, ...b.slots]) assert.equal(worker.livePorts[p], 1, `port ${p} live`);

  book.release(a.grant);
  book.releaseOwner(2); // a worker died: its ports go too
  await turn();
  for (const m of sent.slice(1)) if (m.t === 'turn-live-ports') applyLivePorts(worker, m);
  for (const p of [...a.slots, ...b.slots]) assert.equal(worker.livePorts[p], 0, `port ${p} dead`);
  assert.deepEqual(worker.dead.sort(), [...a.slots, ...b.slots].sort(), 'each death is told once');
});

test('a port held for a RESERVATION-TOKEN is live only once redeemed; a starting worker gets the whole set', async () => {
  const feed = new LivePortFeed(() => undefined);
  const book = new Reservations(limits, feed.onChange);
  const first = book.reserve({ ...req, evenPort: 'even+reserve' }, 1, 0);
  assert.ok(first.ok && first.token !== undefined);
  const held = first.slots[0]! + 1;
  const fresh = table(new Uint8Array(65536).fill(1)); // stale state of a restarted worker
  applyLivePorts(fresh, feed.snapshot());
  assert.equal(fresh.livePorts[first.slots[0]!], 1);
  assert.equal(fresh.livePorts[held], 0, 'held, not live');
  assert.equal(fresh.livePorts.reduce((n, v) => n + v, 0), 1, 'the snapshot replaces what the worker had');
  assert.equal(fresh.dead.length, 65535, 'every stale port is told dead');
  const second = book.reserve({ ...req, token: first.token }, 1, 0);
  assert.ok(second.ok);
  applyLivePorts(fresh, feed.snapshot());
  assert.equal(fresh.livePorts[held], 1);
});
