import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rtp, vp8Delta, vp8Key, vp8More } from '../../test/helpers/rtp.ts';
import { GopCache, MAX_BYTES, h264KeyframeStart, rtpPayloadOffset, vp8KeyframeStart } from './gopCache.ts';


test('VP8: the group runs from the last keyframe, a new keyframe starts a new one', () => {
  const c = new GopCache('VP8');
  c.push(vp8Delta(1, 100));
  assert.equal(c.group().length, 0, 'nothing before the first keyframe');
  c.push(vp8Key(2, 200)); c.push(vp8More(3, 200)); c.push(vp8Delta(4, 300)); c.push(vp8More(5, 300));
  assert.deepEqual(c.group().map((p) => (p[2]! << 8) | p[3]!), [2, 3, 4, 5]);
  c.push(vp8Key(6, 400));
  assert.deepEqual(c.group().map((p) => (p[2]! << 8) | p[3]!), [6]);
});

test('H.264: SPS, PPS and the IDR (one timestamp) open one group; an FU-A IDR start too', () => {
  const c = new GopCache('H264');
  c.push(rtp(1, 10, [0x67, 1])); c.push(rtp(2, 10, [0x68, 1])); c.push(rtp(3, 10, [0x65, 1])); c.push(rtp(4, 20, [0x41, 1]));
  assert.deepEqual(c.group().map((p) => (p[2]! << 8) | p[3]!), [1, 2, 3, 4]);
  c.push(rtp(5, 30, [0x7c, 0x85, 0]));
  assert.deepEqual(c.group().map((p) => (p[2]! << 8) | p[3]!), [5]);
  assert.equal(h264KeyframeStart(Buffer.from([0x7c, 0x05, 0])), false, 'an FU-A continuation');
  assert.equal(h264KeyframeStart(Buffer.from([0x78, 0, 2, 0x67])), true, 'STAP-A with an SPS');
});

test('a group past MAX_BYTES is dropped until the next keyframe', () => {
  const c = new GopCache('VP8');
  c.push(vp8Key(1, 1));
  for (let i = 0; i < MAX_BYTES / 1000 + 10; i++) c.push(rtp(2 + i, 2 + i, [0x80, 0x80, 0x80, 0x02, 0x00], 1000));
  assert.equal(c.group().length, 0);
  assert.ok(c.size <= MAX_BYTES);
  c.push(vp8Delta(9999, 9999));
  assert.equal(c.group().length, 0, 'still waiting for a keyframe');
  c.push(vp8Key(10_000, 10_000));
  assert.equal(c.group().length, 1);
});

test('RTP header lengths: CSRCs and a header extension; malformed packets are skipped', () => {
  const p = rtp(1, 1, [0xbe, 0xde, 0, 1, 0, 0, 0, 0, 0x10, 0x00]);
  p[0] = 0x90; // X = 1
  assert.equal(rtpPayloadOffset(p), 20);
  assert.equal(rtpPayloadOffset(Buffer.alloc(11)), -1);
  assert.equal(rtpPayloadOffset(Buffer.from([0x40, ...Buffer.alloc(12)])), -1, 'version 1');
  assert.equal(vp8KeyframeStart(Buffer.from([0x10])), false, 'no payload header');
});

test('random packets never throw and never exceed the bound', () => {
  for (const codec of ['VP8', 'H264'] as const) {
    const c = new GopCache(codec);
    for (let i = 0; i < 20_000; i++) {
      const b = randomBytes(Math.floor(Math.random() * 40));
      if (Math.random() < 0.5 && b.length > 0) b[0] = 0x80 | (b[0]! & 0x1f);
      c.push(b);
    }
    assert.ok(c.size <= MAX_BYTES);
  }
});
