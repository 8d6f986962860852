/**
 * The lab's delay and loss stage (lab/delay.ts, docs/lab.md "Delay and loss") on a real router
 * namespace: UDP probes carrying their send time cross it. Only what load cannot break is asserted:
 * no probe arrives sooner than the configured delay, none is reordered or dropped without loss,
 * none arrives with 100 % loss, a held one waits for its release. How close to the configured delay they arrive is `npm run lab -- delay`'s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { delaySupported, HOLD_MAX_MS, shapeEgress, shapeLinkAt } from '../../lab/delay.ts';
import { createDelayTopology, runProbes, type ProbeRun } from '../../lab/delayCheck.ts';

const skip = delaySupported();

function assertDelayed(r: ProbeRun, delayMs: number): void {
  assert.equal(r.received, r.sent, `every probe arrives (${r.lost} lost, ${r.overflowed} overflowed, ${r.rcvbufErrors} to the receive buffer, ${r.missing} missing)`);
  const early = r.oneWayMs.filter((ms) => ms < delayMs);
  assert.deepEqual(early, [], `no probe sooner than ${delayMs} ms`);
  assert.equal(r.reordered, 0, 'in order');
}

test('50 ms on a router egress: 1,500 probes at 1,000/s each arrive no sooner than 50 ms after they were sent, in order, none dropped', { skip }, async () => {
  const top = createDelayTopology();
  try {
    const shaper = await shapeEgress(top.router, top.routerToB, { delayMs: 50, lossPct: 0 }, 1);
    try {
      const r = await runProbes(top, { rate: 1000, count: 1500, shaper });
      assert.equal(r.sent, 1500);
      assertDelayed(r, 50);
      const s = shaper.stats();
      assert.equal(s.queued, 1500, 'every probe went through the queue');
      assert.equal(s.overflowed, 0);
      assert.equal(s.running, true);
    } finally {
      shaper.stop();
    }
    const [report] = await shaper.reports;
    assert.equal(report?.accepted, 1500, 'delayq let every probe through');
  } finally {
    top.destroy();
  }
});

test('hold: every probe waits in the queue until release(), then all arrive, in order, and what follows is not held', { skip }, async () => {
  const top = createDelayTopology();
  try {
    const shaper = await shapeEgress(top.router, top.routerToB, { delayMs: 0, lossPct: 0, hold: true }, 1);
    try {
      const run = runProbes(top, { rate: 1000, count: 200, shaper });
      // All 200 are in the queue at once: none left before the release (bounded wait, far below the 10 s hold).
      const deadline = Date.now() + 8_000;
      while (shaper.stats().held < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(shaper.stats().held, 200, 'every probe is held');
      shaper.release();
      const r = await run;
      assert.equal(r.received, 200, `every probe arrives once released (${r.missing} missing)`);
      assert.equal(r.reordered, 0, 'in order');
      // Without the release they would still come, HOLD_MAX_MS after they were sent.
      assert.ok(Math.max(...r.oneWayMs) < HOLD_MAX_MS, `released before the hold ran out (slowest ${Math.max(...r.oneWayMs).toFixed(0)} ms)`);
      const after = await runProbes(top, { rate: 1000, count: 100, shaper });
      assert.equal(after.received, 100, 'what follows the release passes');
      assert.ok(Math.max(...after.oneWayMs) < HOLD_MAX_MS, 'and is not held');
      assert.equal(shaper.stats().held, 0, 'nothing is held after the release');
    } finally {
      shaper.stop();
    }
  } finally {
    top.destroy();
  }
});

test('100 % loss: no probe arrives, and the loss rule counts every one', { skip }, async () => {
  const top = createDelayTopology();
  try {
    const shaper = await shapeEgress(top.router, top.routerToB, { delayMs: 50, lossPct: 100 }, 1);
    try {
      const r = await runProbes(top, { rate: 500, count: 300, shaper });
      assert.equal(r.sent, 300);
      assert.equal(r.received, 0);
      assert.equal(r.lost, 300);
    } finally {
      shaper.stop();
    }
  } finally {
    top.destroy();
  }
});

test('one end shapes both directions of a link (egress and ingress): 30 ms each way', { skip }, async () => {
  const top = createDelayTopology();
  try {
    const shaper = await shapeLinkAt({ ns: top.router, dev: top.routerToB }, { delayMs: 30, lossPct: 0 }, 1);
    try {
      assertDelayed(await runProbes(top, { rate: 500, count: 500, shaper }), 30);
      assertDelayed(await runProbes(top, { rate: 500, count: 500, shaper, reverse: true }), 30);
    } finally {
      shaper.stop();
    }
  } finally {
    top.destroy();
  }
});
