import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleRequest } from '../../testdata/stun/rfc5769.ts';
import { FRAME_INCOMPLETE, FRAME_INVALID, isChannelData, stunFrameLength } from './framing.ts';

describe('stunFrameLength', () => {
  const stun = sampleRequest.bytes;

  it('gives the length of a whole STUN message at an offset', () => {
    const stream = Buffer.concat([Buffer.from([9, 9]), stun, stun]);
    assert.equal(stunFrameLength(stream, 2), stun.length);
    assert.equal(stunFrameLength(stream, 2 + stun.length), stun.length);
  });

  it('waits while the header or the body is incomplete', () => {
    assert.equal(stunFrameLength(stun.subarray(0, 3), 0), FRAME_INCOMPLETE);
    assert.equal(stunFrameLength(stun.subarray(0, 20), 0), FRAME_INCOMPLETE);
    assert.equal(stunFrameLength(stun.subarray(0, stun.length - 1), 0), FRAME_INCOMPLETE);
    assert.equal(stunFrameLength(stun, stun.length), FRAME_INCOMPLETE);
  });

  it('pads ChannelData to 4 bytes over streams (RFC 8656 §12.5)', () => {
    const frame = Buffer.from([0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
    assert.equal(stunFrameLength(frame, 0), 12);
    assert.equal(stunFrameLength(frame.subarray(0, 9), 0), FRAME_INCOMPLETE);
    assert.equal(stunFrameLength(Buffer.from([0x4f, 0xff, 0, 0]), 0), 4);
  });

  it('calls anything else invalid instead of throwing', () => {
    assert.equal(stunFrameLength(Buffer.from([0x80, 0, 0, 0]), 0), FRAME_INVALID);
    assert.equal(stunFrameLength(Buffer.from([0x50, 0, 0, 0]), 0), FRAME_INVALID);
    assert.equal(stunFrameLength(Buffer.from([0x00, 0x01, 0x00, 0x05]), 0), FRAME_INVALID);
  });
});

describe('isChannelData', () => {
  it('recognises channels 0x4000-0x4FFF with a full header', () => {
    assert.equal(isChannelData(Buffer.from([0x40, 0x00, 0, 0])), true);
    assert.equal(isChannelData(Buffer.from([0x4f, 0xff, 0, 4, 1, 2, 3, 4])), true);
    assert.equal(isChannelData(Buffer.from([0x40, 0x00, 0])), false);
    assert.equal(isChannelData(Buffer.from([0x50, 0x00, 0, 0])), false);
    assert.equal(isChannelData(sampleRequest.bytes), false);
  });
});
