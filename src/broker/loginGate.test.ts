import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LoginGate, type LoginTurn } from './loginGate.ts';

/** Whether a turn's `granted` has settled, and how (after the microtasks queued so far). */
async function settled(turn: LoginTurn): Promise<boolean | 'pending'> {
  return Promise.race([turn.granted, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

test('without a waiting room: at most N logins hold a slot, the next is refused; an end frees one, once', async () => {
  const gate = new LoginGate({ maxInFlight: 2 });
  const a = gate.enter();
  const b = gate.enter();
  assert.ok(a && b);
  assert.equal(a.waits, false);
  assert.equal(await a.granted, true);
  assert.equal(gate.enter(), undefined, 'the third: refused');
  assert.equal(gate.inFlight, 2);
  a.end();
  a.end();
  assert.equal(gate.inFlight, 1, 'a second end of the same turn frees nothing more');
  const c = gate.enter();
  assert.ok(c);
  assert.equal(gate.enter(), undefined);
  b.end();
  c.end();
  assert.equal(gate.inFlight, 0);
});

test('0 in flight is unbounded', () => {
  const gate = new LoginGate({ maxInFlight: 0 });
  const turns = Array.from({ length: 10_000 }, () => gate.enter());
  assert.ok(turns.every((t) => t !== undefined && !t.waits));
  for (const t of turns) t?.end();
  assert.equal(gate.inFlight, 0);
});

test('beyond the slots a login waits; a freed slot goes to the oldest waiter, and the room is bounded', async () => {
  const gate = new LoginGate({ maxInFlight: 1, maxWaiting: 2, maxWaitMs: 60_000 });
  const a = gate.enter();
  const w1 = gate.enter();
  const w2 = gate.enter();
  assert.ok(a && w1 && w2);
  assert.equal(w1.waits, true);
  assert.equal(gate.queued, 2);
  assert.equal(gate.enter(), undefined, 'slots and waiting room full: refused at once');
  assert.equal(await settled(w1), 'pending');
  a.end();
  assert.equal(await w1.granted, true, 'the oldest waiter takes the slot');
  assert.equal(await settled(w2), 'pending');
  assert.equal(gate.inFlight, 1, 'the slot passed on, not freed');
  assert.equal(gate.queued, 1);
  w2.end();
  assert.equal(await w2.granted, false, 'a waiter that ends gives its place up');
  assert.equal(gate.queued, 0);
  w1.end();
  assert.equal(gate.inFlight, 0);
});

test('a login waits at most maxWaitMs, then is turned away; its place is free again', async () => {
  const gate = new LoginGate({ maxInFlight: 1, maxWaiting: 1, maxWaitMs: 30 });
  const a = gate.enter();
  const w = gate.enter();
  assert.ok(a && w);
  assert.equal(await w.granted, false);
  assert.equal(gate.queued, 0);
  assert.equal(gate.inFlight, 1);
  w.end();
  assert.equal(gate.inFlight, 1, 'the end of a turned-away turn frees no slot it never held');
  const w2 = gate.enter();
  assert.ok(w2?.waits);
  a.end();
  assert.equal(await w2.granted, true);
  w2.end();
  assert.equal(gate.inFlight, 0);
});

test('any order of enters and (repeated) ends: never above either bound, slots pass first come first served, all back to 0', async () => {
  await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.array(fc.oneof(fc.constant(-1), fc.nat(20)), { maxLength: 150 }), async (max, room, steps) => {
    const gate = new LoginGate({ maxInFlight: max, maxWaiting: room, maxWaitMs: 60_000 });
    const live: LoginTurn[] = [];
    const ended: LoginTurn[] = [];
    const grantedOrder: LoginTurn[] = [];
    const waitedOrder: LoginTurn[] = [];
    for (const step of steps) {
      if (step === -1) {
        const full = gate.inFlight >= max && gate.queued >= room;
        const turn = gate.enter();
        assert.equal(turn === undefined, full, 'refused exactly when slots and room are full');
        if (turn !== undefined) {
          live.push(turn);
          if (turn.waits) {
            waitedOrder.push(turn);
            void turn.granted.then((ok) => { if (ok) grantedOrder.push(turn); });
          }
        }
      } else if (step < live.length) {
        const [turn] = live.splice(step, 1);
        turn?.end();
        if (turn) ended.push(turn);
      } else if (ended.length > 0) {
        ended[step % ended.length]?.end();
      }
      await Promise.resolve();
      assert.ok(gate.inFlight <= max);
      assert.ok(gate.queued <= room);
    }
    for (const turn of live) turn.end();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gate.inFlight, 0);
    assert.equal(gate.queued, 0);
    // Those given a slot were given it in the order they came.
    const rank = new Map(waitedOrder.map((t, i) => [t, i]));
    for (let i = 1; i < grantedOrder.length; i++) assert.ok((rank.get(grantedOrder[i - 1] as LoginTurn) as number) < (rank.get(grantedOrder[i] as LoginTurn) as number));
  }), { numRuns: 300 });
});
