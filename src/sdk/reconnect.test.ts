import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import { seededRandom } from '../../test/helpers/random.ts';
import { Backoff, Reconnector, SignalingUrls } from './reconnect.ts';

const node = (n: string): { urls: string[] } => ({ urls: [`ws://${n}:8080/mqtt`, `mqtt://${n}:1883`] });

test('full jitter: the n-th wait in a row is uniform below base · 2^n, capped; a success starts again', () => {
  const high = new Backoff({ baseMs: 1000, maxMs: 10_000, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => high.next()), [999, 1999, 3999, 7999, 9999, 9999]);
  assert.equal(high.attempts, 6);
  high.reset();
  assert.equal(high.next(), 999);
  const low = new Backoff({ baseMs: 1000, maxMs: 10_000, random: () => 0 });
  assert.deepEqual([low.next(), low.next(), low.next()], [0, 0, 0], 'full jitter reaches down to no wait at all');
  const huge = new Backoff({ baseMs: 1000, maxMs: 30_000, random: () => 0.5 });
  for (let i = 0; i < 200; i++) assert.ok(huge.next() <= 15_000, 'no overflow after many failures');
});

test("a client's URLs: one per node of its own transport, nearest first, the first URL kept last; the one in use stays", () => {
  const ws = new SignalingUrls('ws://lb:8080/mqtt');
  ws.use([node('a'), node('b'), { urls: ['mqtt://tcp-only:1883'] }, { urls: 'junk' as unknown as string[] }, node('a')]);
  assert.deepEqual(ws.all, ['ws://a:8080/mqtt', 'ws://b:8080/mqtt', 'ws://lb:8080/mqtt']);
  assert.equal(ws.current, 'ws://lb:8080/mqtt', 'the connection now is not moved by a new list');
  assert.equal(ws.advance(), 'ws://a:8080/mqtt');
  assert.equal(ws.advance(), 'ws://b:8080/mqtt');
  assert.equal(ws.advance(), 'ws://lb:8080/mqtt');

  const tcp = new SignalingUrls('mqtt://a:1883');
  tcp.use([node('b'), node('a'), node('c')]);
  assert.deepEqual(tcp.all, ['mqtt://b:1883', 'mqtt://a:1883', 'mqtt://c:1883'], 'the first URL is listed: no extra entry');
  assert.equal(tcp.advance(), 'mqtt://c:1883', 'after the one in use, the next in the list');
  tcp.use([node('a'), node('b')]);
  assert.equal(tcp.advance(), 'mqtt://a:1883', 'a URL no longer listed goes on to the nearest');

  const none = new SignalingUrls('ws://a:8080/mqtt');
  none.use([]);
  none.use([{ urls: ['mqtt://b:1883'] }]);
  assert.deepEqual(none.all, ['ws://a:8080/mqtt'], 'nothing of its transport: the list stays');
});

test('after losing its node the client tries the next URL after a wait below the base, then on, the waits doubling', async () => {
  const clock = fakeClock();
  const urls = new SignalingUrls('ws://a:8080/mqtt');
  urls.use([node('a'), node('b'), node('c')]);
  const attempts: Array<{ url: string; at: number }> = [];
  const r = new Reconnector({
    clock, urls, backoff: new Backoff({ baseMs: 1000, maxMs: 8000, random: () => 0.75 }),
    attempt: (url) => attempts.push({ url, at: clock.now() }),
  });
  const t0 = clock.now();
  r.lost();
  r.lost(); // a second close while one attempt waits changes nothing
  assert.equal(r.scheduled, true);
  await clock.advance(749);
  assert.equal(attempts.length, 0);
  await clock.advance(1);
  assert.deepEqual(attempts, [{ url: 'ws://b:8080/mqtt', at: t0 + 750 }]);
  // b refuses too: c after 1.5 s, then a after 3 s, then b after 6 s, then capped.
  for (const expect of [{ url: 'ws://c:8080/mqtt', waitMs: 1500 }, { url: 'ws://a:8080/mqtt', waitMs: 3000 }, { url: 'ws://b:8080/mqtt', waitMs: 6000 }, { url: 'ws://c:8080/mqtt', waitMs: 6000 }]) {
    const from = clock.now();
    r.lost();
    await clock.advance(expect.waitMs);
    assert.deepEqual(attempts.at(-1), { url: expect.url, at: from + expect.waitMs });
  }
  assert.equal(urls.lastChance, true, 'every other URL has failed');
  r.connected();
  assert.equal(urls.lastChance, false);
  const from = clock.now();
  r.lost();
  await clock.advance(1000);
  assert.equal(attempts.at(-1)?.at, from + 750, 'a success starts the waits from the base again');
  r.lost();
  r.stop();
  await clock.advance(60_000);
  assert.equal(attempts.length, 6, 'stopped: no attempt after');
  assert.equal(clock.pending, 0);
});

test('a busy node (CONNACK 3): the next URL after a short wait of its own, which never grows past twice the base; failures keep their own count', async () => {
  const clock = fakeClock();
  const urls = new SignalingUrls('ws://a:8080/mqtt');
  urls.use([node('a'), node('b'), node('c')]);
  const attempts: Array<{ url: string; at: number }> = [];
  const r = new Reconnector({
    clock, urls, backoff: new Backoff({ baseMs: 1000, maxMs: 30_000, random: () => 0.999 }),
    attempt: (url) => attempts.push({ url, at: clock.now() }),
  });
  // Busy waits: below 250, 500, 1000, 2000, then 2000 ms (base / 4 · 2^n, capped at 2 × base).
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    const from = clock.now();
    r.busy();
    await clock.advance(2000);
    waits.push(attempts.at(-1)!.at - from);
  }
  assert.deepEqual(waits, [249, 499, 999, 1998, 1998, 1998, 1998, 1998]);
  assert.deepEqual(attempts.slice(0, 3).map((a) => a.url), ['ws://b:8080/mqtt', 'ws://c:8080/mqtt', 'ws://a:8080/mqtt'], 'each busy refusal moves on to the next node');
  // A real failure after eight busy refusals waits as a first failure does: below the base.
  const from = clock.now();
  r.lost();
  await clock.advance(1000);
  assert.equal(attempts.at(-1)!.at - from, 999);
  r.connected();
  const again = clock.now();
  r.busy();
  await clock.advance(250);
  assert.equal(attempts.at(-1)!.at - again, 249, 'a success starts the busy waits again too');
  r.stop();
});

test('3,320 clients of a killed node, every login refused busy twice: all back within 1.75 s of waiting (a quarter, half and the base)', async () => {
  const clock = fakeClock();
  const random = seededRandom(13);
  let worst = 0;
  for (let i = 0; i < 3320; i++) {
    const urls = new SignalingUrls('ws://a:8080/mqtt');
    urls.use([node('a'), node('b'), node('c')]);
    let tries = 0;
    let doneAt = -1;
    const start = clock.now();
    const r: Reconnector = new Reconnector({
      clock, urls, backoff: new Backoff({ baseMs: 1000, maxMs: 30_000, random }),
      attempt: () => {
        tries++;
        if (tries <= 2) r.busy();
        else doneAt = clock.now();
      },
    });
    r.lost();
    await clock.advance(5000);
    assert.ok(doneAt >= 0, `client ${i} logged in`);
    worst = Math.max(worst, doneAt - start);
  }
  assert.ok(worst < 1750, `the last came back after ${worst} ms`);
});

test('no reconnection storm: 5,000 clients of a node that dies come back spread over the first second, onto the other nodes', async () => {
  const clock = fakeClock();
  const random = seededRandom(13);
  const perBucket = new Array<number>(10).fill(0);
  const perNode = new Map<string, number>();
  const t0 = clock.now();
  const nodes = ['a', 'b', 'c', 'd', 'e', 'f'];
  for (let i = 0; i < 5_000; i++) {
    const urls = new SignalingUrls('ws://a:8080/mqtt');
    // Each client's own order (rendezvous on its id, src/cluster/signalingServers.ts): here a rotation.
    urls.use([node('a'), ...nodes.slice(1).map((_, k) => node(nodes[1 + ((i + k) % 5)] as string))]);
    const r = new Reconnector({
      clock, urls, backoff: new Backoff({ baseMs: 1000, maxMs: 30_000, random }),
      attempt: (url) => {
        const bucket = Math.floor((clock.now() - t0) / 100);
        perBucket[bucket] = (perBucket[bucket] ?? 0) + 1;
        perNode.set(url, (perNode.get(url) ?? 0) + 1);
      },
    });
    r.lost();
  }
  await clock.advance(1000);
  assert.equal(perBucket.reduce((x, y) => x + y, 0), 5_000, 'all within the base wait');
  for (const n of perBucket) assert.ok(n > 400 && n < 600, `about 500 per 100 ms: ${perBucket.join(', ')}`);
  assert.equal(perNode.has('ws://a:8080/mqtt'), false, 'none back to the dead node first');
  for (const n of perNode.values()) assert.ok(n > 750 && n < 1250, `spread over the 5 others: ${[...perNode.values()].join(', ')}`);
});

test('a drain notice: the client leaves cleanly at a time uniform below the spread, then tries the next node at once', async () => {
  const clock = fakeClock();
  const events: string[] = [];
  const urls = new SignalingUrls('ws://a:8080/mqtt');
  urls.use([node('a'), node('b'), node('c')]);
  let leaveDone: (() => void) | undefined;
  const r = new Reconnector({
    clock, urls, random: () => 0.5,
    backoff: new Backoff({ baseMs: 1000, maxMs: 30_000, random: () => 0.5 }),
    attempt: (url) => events.push(`attempt ${url}`),
    leave: (then) => { events.push(`leave at ${clock.mono()}`); leaveDone = then; },
  });
  // The draining node lists the others only.
  urls.use([node('c'), node('b')]);
  r.move(1000);
  r.move(1000); // a second notice changes nothing
  assert.equal(r.moving, true);
  r.lost(); // the connection ending during the move is the move's doing
  await clock.advance(499);
  assert.deepEqual(events, [], 'the connection stays up through the wait');
  await clock.advance(1);
  assert.deepEqual(events, ['leave at 500']);
  leaveDone?.();
  assert.deepEqual(events, ['leave at 500', 'attempt ws://c:8080/mqtt'], 'at once, to the first node of the new list');
  assert.equal(r.moving, false);
  // After that a loss goes the usual way.
  r.lost();
  await clock.advance(1000);
  assert.equal(events.at(-1), 'attempt ws://b:8080/mqtt');
});

test('5,000 clients told to move leave spread over the spread, not in one instant', async () => {
  const clock = fakeClock();
  const random = seededRandom(7);
  const perBucket = new Array<number>(10).fill(0);
  for (let i = 0; i < 5_000; i++) {
    const urls = new SignalingUrls('ws://a:8080/mqtt');
    const r = new Reconnector({
      clock, urls, random,
      backoff: new Backoff({ baseMs: 1000, maxMs: 30_000, random }),
      attempt: () => undefined,
      leave: () => { perBucket[Math.floor(clock.mono() / 100)]! += 1; },
    });
    urls.use([node('b')]);
    r.move(1000);
  }
  await clock.advance(1000);
  assert.equal(perBucket.reduce((x, y) => x + y, 0), 5_000);
  for (const n of perBucket) assert.ok(n > 400 && n < 600, `about 500 per 100 ms: ${perBucket.join(', ')}`);
});
