import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vp8Delta, vp8Key } from '../../test/helpers/rtp.ts';
import type { RtcPeer } from '../sdk/rtc.ts';
import { TestVideoSource, ffmpegArgs } from './testVideo.ts';

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

test('a new viewer gets nothing live before its DTLS is up, then the group from its keyframe, then the live packets in order', async () => {
  const { RTCPeerConnection } = await import('werift');
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'sendonly' });
  const listeners = new Set<(s: string) => void>();
  const peer = {
    raw: pc,
    on: (event: string, cb: (s: string) => void) => { if (event === 'state') listeners.add(cb); return () => listeners.delete(cb); },
  } as unknown as RtcPeer;
  const source = new TestVideoSource({ codec: 'VP8' });
  const feed = (pkt: Buffer): void => (source as unknown as { onPacket(p: Buffer): void }).onPacket(pkt);
  const detach = source.attach(peer);
  const track = pc.getTransceivers()[0]!.sender.track!;
  const got: number[] = [];
  track.onReceiveRtp.subscribe((rtp) => got.push(rtp.header.sequenceNumber));

  feed(vp8Delta(1, 100)); // before any keyframe: in no group
  feed(vp8Key(2, 200)); // the group starts
  feed(vp8Delta(3, 300));
  assert.deepEqual(got, [], 'nothing reaches the viewer before it can send');
  assert.equal(source.viewers, 1);
  for (const l of listeners) l('connected');
  assert.deepEqual(got, [2, 3], 'the group so far, from its keyframe');
  feed(vp8Delta(4, 400));
  assert.deepEqual(got, [2, 3, 4], 'then the live packets, none twice');
  detach();
  assert.equal(source.viewers, 0);
  await pc.close();
});
