/**
 * The lab's delay and loss stage (lab/delay.ts, docs/lab.md "Delay and loss") on a real router
 * namespace: UDP probes carrying their send time cross it. Only what load cannot break is asserted:
 * no probe arrives sooner than the configured delay, none is reordered or dropped without loss,
 * none arrives with 100 % loss. How close to the configured delay they arrive is `npm run lab -- delay`'s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { delaySupported, shapeEgress, shapeLinkAt } from '../../lab/delay.ts';
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
