import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import { AppChannel, PINGS_KEPT } from './appChannel.ts';
import { DeviceChannel } from './deviceChannel.ts';
import { FRAME_STAMPS_KEPT, FrameLatency } from './frameLatency.ts';

/** An app's AppChannel and a device's DeviceChannel joined by a channel that delivers on `flush()`. */
function pair(opts: { open?: boolean } = {}) {
  const clock = fakeClock();
  const toDevice: Array<string | Uint8Array> = [];
  const toApp: Array<string | Uint8Array> = [];
  let frameListener: ((rtp: number, at: number) => void) | undefined;
  const heard = { rtts: [] as number[], frames: [] as Array<{ rtpTimestamp: number; latencyMs: number }>, hello: [] as unknown[], data: [] as unknown[] };
  const appEnd = { readyState: (opts.open ?? true) ? 'open' as const : 'connecting' as const, send: (d: string | Uint8Array) => { toDevice.push(d); } };
  const app = new AppChannel({
    channel: appEnd, clock,
    onRtt: (r) => heard.rtts.push(r), onFrame: (f) => heard.frames.push(f), onHello: (m) => heard.hello.push(m), onData: (d) => heard.data.push(d),
  });
  const device = new DeviceChannel({
    channel: { readyState: 'open', send: (d) => { toApp.push(d); } }, deviceId: 'cam-1', clock,
    media: { videoCodec: 'VP8', onFrame: (l) => { frameListener = l; return () => { frameListener = undefined; }; } },
  });
  const flush = (): void => {
    for (const d of toDevice.splice(0)) device.handle(d);
    for (const d of toApp.splice(0)) app.handle(d);
  };
  return { clock, app, device, heard, flush, toDevice, toApp, emitFrame: (rtp: number, at: number) => frameListener?.(rtp, at), frames: () => frameListener !== undefined };
}

test('a ping comes back as a pong: the round trip on the monotonic clock', async () => {
  const { clock, app, heard, flush } = pair();
  const rtt = app.ping(5000);
  await clock.advance(12);
  flush();
  assert.equal(await rtt, 12);
  assert.deepEqual(heard.rtts, [12]);
  app.probe();
  await clock.advance(3);
  flush();
  assert.deepEqual(heard.rtts, [12, 3]);
});

test('an unanswered ping times out; a pong after it, or a forgotten ping, counts for nothing', async () => {
  const { clock, app, heard, flush } = pair();
  const rtt = app.ping(1000);
  const failed = assert.rejects(rtt, { code: 'TIMEOUT' });
  await clock.advance(1000);
  await failed;
  flush();
  assert.deepEqual(heard.rtts, []);
  app.probe();
  app.forgetPings();
  flush();
  assert.deepEqual(heard.rtts, []);
  assert.equal(clock.pending, 0);
});

test('pings and echoes on a channel that is not open fail with CLOSED at once', async () => {
  const { app, clock } = pair({ open: false });
  await assert.rejects(app.ping(1000), { code: 'CLOSED' });
  await assert.rejects(app.echo('x', 1000), { code: 'CLOSED' });
  app.probe(); // nothing to wait for
  assert.equal(clock.pending, 0);
});

test('periodic probes keep only the last PINGS_KEPT in flight', async () => {
  const { app, heard, toDevice, device, toApp } = pair();
  for (let i = 0; i < PINGS_KEPT + 1; i++) app.probe();
  const first = toDevice.shift();
  assert.ok(first);
  device.handle(first);
  app.handle(toApp.splice(0)[0] ?? '');
  assert.deepEqual(heard.rtts, [], 'the oldest ping was forgotten');
});

test('an echo returns its data; application data is echoed by the device and reaches the app as data', async () => {
  const { app, heard, flush, clock } = pair();
  const back = app.echo({ n: 1 }, 5000);
  flush();
  assert.deepEqual(await back, { n: 1 });
  const late = app.echo('late', 100);
  const failed = assert.rejects(late, { code: 'TIMEOUT' });
  await clock.advance(100);
  await failed;
  app.handle(new Uint8Array([1, 2]));
  const appData = pair();
  appData.toDevice.push('hi');
  appData.flush();
  assert.deepEqual(appData.heard.data, ['hi']);
  assert.deepEqual(heard.data, [new Uint8Array([1, 2])]);
});

test('the device says hello with its codec; frame stamps flow while asked for and match frames in either order', async () => {
  const { app, device, heard, flush, emitFrame, frames } = pair();
  device.hello();
  flush();
  assert.deepEqual(heard.hello, [{ t: 'hello', device: 'cam-1', codec: 'VP8' }]);
  app.frameStamps(true);
  flush();
  assert.ok(frames());
  emitFrame(90_000, 1000);
  flush();
  app.noteFrame(90_000, 1040); // stamp first, frame later
  app.noteFrame(93_000, 1075); // frame first, stamp later
  emitFrame(93_000, 1033);
  flush();
  assert.deepEqual(heard.frames, [{ rtpTimestamp: 90_000, latencyMs: 40 }, { rtpTimestamp: 93_000, latencyMs: 42 }]);
  app.frameStamps(false);
  flush();
  assert.ok(!frames());
  app.frameStamps(true);
  flush();
  device.stopFrames();
  assert.ok(!frames());
});

test('frame latency keeps a bounded number of unmatched stamps and frames', () => {
  const f = new FrameLatency(2);
  assert.equal(f.stamp(1, 100), undefined);
  f.stamp(2, 200);
  f.stamp(3, 300); // 1 is forgotten
  assert.equal(f.arrived(1, 150), undefined);
  assert.equal(f.arrived(3, 330), 30);
  f.arrived(10, 1); f.arrived(11, 2); f.arrived(12, 3); // 10 is forgotten
  assert.equal(f.stamp(10, 0), undefined);
  assert.equal(f.stamp(12, 1), 2);
  assert.equal(FRAME_STAMPS_KEPT, 600);
});
