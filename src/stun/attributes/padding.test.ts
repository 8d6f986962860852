import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Attr } from '../constants.ts';
import { attrValue, decodeMessage } from '../message.ts';
import { MessageWriter } from '../writer.ts';
import { readPaddingLength } from './padding.ts';

it('PADDING: only its length matters, and it is written as zeros', () => {
  const w = new MessageWriter().reset(0x0101, Buffer.alloc(12));
  w.reserveAttr(Attr.Padding, 1200);
  const value = attrValue(decodeMessage(w.finish()), 0);
  assert.equal(readPaddingLength(value), 1200);
  assert.deepEqual(value, Buffer.alloc(1200));
});
