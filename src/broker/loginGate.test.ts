import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LoginGate } from './loginGate.ts';

test('at most N logins hold a slot; a release frees one, once, however often it is called', () => {
  const gate = new LoginGate(2);
  const a = gate.acquire();
  const b = gate.acquire();
  assert.ok(a && b);
  assert.equal(gate.acquire(), undefined, 'the third waits for nothing: refused');
  assert.equal(gate.inFlight, 2);
  a();
  a();
  assert.equal(gate.inFlight, 1, 'a second release of the same slot frees nothing more');
  const c = gate.acquire();
  assert.ok(c);
  assert.equal(gate.acquire(), undefined);
  b();
  c();
  assert.equal(gate.inFlight, 0);
});

test('0 is unbounded', () => {
  const gate = new LoginGate(0);
  const slots = Array.from({ length: 10_000 }, () => gate.acquire());
  assert.ok(slots.every((s) => s !== undefined));
  for (const s of slots) s?.();
  assert.equal(gate.inFlight, 0);
});

test('any order of acquires and (repeated) releases: never above the bound, back to 0 once all are released', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.oneof(fc.constant(-1), fc.nat(20)), { maxLength: 200 }), (max, steps) => {
    const gate = new LoginGate(max);
    const held: Array<() => void> = [];
    const released: Array<() => void> = [];
    for (const step of steps) {
      if (step === -1) {
        const slot = gate.acquire();
        if (slot === undefined) assert.equal(gate.inFlight, max, 'refused only when full');
        else held.push(slot);
      } else if (step < held.length) {
        const [slot] = held.splice(step, 1);
        slot?.();
        if (slot) released.push(slot);
      } else if (released.length > 0) {
        released[step % released.length]?.();
      }
      assert.ok(gate.inFlight <= max);
      assert.equal(gate.inFlight, held.length);
    }
    for (const slot of held) slot();
    assert.equal(gate.inFlight, 0);
  }), { numRuns: 500 });
});
