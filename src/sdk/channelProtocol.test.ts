import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChannelMessage, readChannelMessage } from './channelProtocol.ts';

test('SDK messages are recognised; application data is not', () => {
  assert.deepEqual(readChannelMessage(encodeChannelMessage({ t: 'ping', id: 1, at: 2 })), { t: 'ping', id: 1, at: 2 });
  assert.deepEqual(readChannelMessage('{"t":"frame","rtp":9,"at":10}'), { t: 'frame', rtp: 9, at: 10 });
  assert.equal(readChannelMessage('{"t":"chat","text":"hi"}'), undefined);
  assert.equal(readChannelMessage('{not json'), undefined);
  assert.equal(readChannelMessage('hello'), undefined);
  assert.equal(readChannelMessage(new Uint8Array([123, 125])), undefined);
});
