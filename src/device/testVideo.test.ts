import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ffmpegArgs } from './testVideo.ts';

const base = { width: 640, height: 360, fps: 30, bitrateKbps: 600, keyframeSec: 1 };

test('VP8: realtime libvpx without look-ahead, a keyframe every second, RTP to the loopback port', () => {
  const a = ffmpegArgs({ ...base, codec: 'VP8' }, 40000);
  assert.ok(a.includes('libvpx'));
  assert.equal(a[a.indexOf('-lag-in-frames') + 1], '0');
  assert.equal(a[a.indexOf('-g') + 1], '30');
  assert.ok(a.includes('testsrc=size=640x360:rate=30'));
  assert.equal(a.at(-1), 'rtp://127.0.0.1:40000?pkt_size=1200');
});

test('H.264: constrained baseline (what browsers decode), no B-frames, zero latency', () => {
  const a = ffmpegArgs({ ...base, codec: 'H264', fps: 15, keyframeSec: 2 }, 1);
  assert.ok(a.includes('libx264'));
  assert.equal(a[a.indexOf('-profile:v') + 1], 'baseline');
  assert.equal(a[a.indexOf('-bf') + 1], '0');
  assert.equal(a[a.indexOf('-tune') + 1], 'zerolatency');
  assert.equal(a[a.indexOf('-g') + 1], '30');
});
