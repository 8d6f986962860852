import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import pino from 'pino';
import { P2pdError } from '../errors.ts';
import { PresenceTracker } from './presence.ts';
import { DeviceWaker, type DeviceWakerOptions } from './wake.ts';

const log = pino({ level: 'silent' });
const offline = (e: unknown): boolean => e instanceof P2pdError && e.code === 'DEVICE_OFFLINE';

function waker(over: Partial<DeviceWakerOptions> = {}): { w: DeviceWaker; presence: PresenceTracker; published: { topic: string; payload: string; retain: boolean }[] } {
  const presence = new PresenceTracker();
  const published: { topic: string; payload: string; retain: boolean }[] = [];
  const w = new DeviceWaker({
    presence, timeoutMs: 5000, log,
    publish: async (topic, payload, o) => { published.push({ topic, payload, retain: o.retain === true }); },
    ...over,
  });
  return { w, presence, published };
}

test('an online device needs no wake; an offline one is woken once for all its waiters', async () => {
  const { w, presence, published } = waker();
  presence.set('cam-on', true);
  await w.wake('cam-on');
  assert.equal(published.length, 0);
  const a = w.wake('cam-1');
  const b = w.wake('cam-1');
  assert.equal(w.size, 2);
  assert.equal(published.length, 1, 'one retained wake for both');
  assert.equal(published[0]?.topic, 'p2p/signal/device/cam-1');
  assert.equal(published[0]?.retain, true);
  const envelope = JSON.parse(published[0]?.payload ?? '{}') as { type: string; from: string; to: string; payload: { deviceId: string; timeoutSec: number } };
  assert.deepEqual([envelope.type, envelope.from, envelope.to, envelope.payload.deviceId, envelope.payload.timeoutSec], ['wake', 'server', 'cam-1', 'cam-1', 5]);
  presence.set('cam-1', true);
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.requestedAt, rb.requestedAt);
  assert.ok(ra.wokeAt >= ra.requestedAt);
  assert.equal(w.size, 0);
  assert.deepEqual(published[1], { topic: 'p2p/signal/device/cam-1', payload: '', retain: true }, 'the retained wake is cleared');
  w.stop();
});

test('a device that does not wake: DEVICE_OFFLINE after the timeout, and nothing is left held', async () => {
  const { w, published } = waker({ timeoutMs: 50 });
  await assert.rejects(w.wake('cam-2'), offline);
  assert.equal(w.size, 0);
  assert.equal(published.at(-1)?.payload, '', 'cleared when the wake ends');
  // The next wake is a new one: its hooks fire again.
  await assert.rejects(w.wake('cam-2'), offline);
  assert.equal(published.filter((p) => p.payload !== '').length, 2);
  w.stop();
});

test('waiters are bounded per device and per node: past a bound, DEVICE_OFFLINE at once', async () => {
  const { w } = waker({ maxPerDevice: 2, maxPerNode: 3 });
  const held = [w.wake('cam-a'), w.wake('cam-a')];
  await assert.rejects(w.wake('cam-a'), offline, 'per device');
  held.push(w.wake('cam-b'));
  await assert.rejects(w.wake('cam-c'), offline, 'per node');
  assert.equal(w.size, 3);
  w.stop();
  for (const p of held) await assert.rejects(p, offline);
  assert.equal(w.size, 0);
});

test('the webhook gets one POST per wake; a failing webhook is not retried', async () => {
  const posts: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => { posts.push(body); res.writeHead(500).end(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const { w, presence } = waker({ webhook: `http://127.0.0.1:${port}/wake`, timeoutMs: 2000 });
  const held = [w.wake('cam-w'), w.wake('cam-w'), w.wake('cam-w')];
  for (let i = 0; i < 100 && posts.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  presence.set('cam-w', true);
  await Promise.all(held);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(posts.length, 1);
  assert.deepEqual(Object.keys(JSON.parse(posts[0] as string) as object).sort(), ['deviceId', 'requestedAt', 'timeoutSec', 'type']);
  w.stop();
  await new Promise((r) => server.close(r));
});
