import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isChannelDataFrame, isValidChannel, streamPadding, turnFrameLength } from './channelData.ts';
import { FRAME_INCOMPLETE, FRAME_INVALID } from '../stun/index.ts';

test('accepts RFC 5766 channel numbers 0x4000-0x7FFF', () => {
  assert.ok(isValidChannel(0x4000) && isValidChannel(0x4fff) && isValidChannel(0x7db2) && isValidChannel(0x7fff));
  assert.ok(!isValidChannel(0x3fff) && !isValidChannel(0x8000));
  assert.ok(isChannelDataFrame(Buffer.from([0x7d, 0xb2, 0, 0])));
  assert.ok(!isChannelDataFrame(Buffer.from([0x00, 0x01, 0, 0])));
  assert.ok(!isChannelDataFrame(Buffer.from([0x40, 0x00, 0])));
});

test('cuts ChannelData from a stream with its padding (RFC 8656 §12.5)', () => {
  const frame = Buffer.from([0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
  assert.equal(streamPadding(5), 3);
  assert.equal(streamPadding(8), 0);
  assert.equal(turnFrameLength(frame, 0), 12);
  assert.equal(turnFrameLength(frame.subarray(0, 11), 0), FRAME_INCOMPLETE);
  assert.equal(turnFrameLength(Buffer.from([0x7f, 0xff, 0, 0]), 0), 4);
  assert.equal(turnFrameLength(Buffer.from([0x80, 0, 0, 0]), 0), FRAME_INVALID);
  const stun = Buffer.alloc(20);
  stun.writeUInt16BE(0x0001, 0);
  stun.writeUInt32BE(0x2112a442, 4);
  assert.equal(turnFrameLength(stun, 0), 20);
});
