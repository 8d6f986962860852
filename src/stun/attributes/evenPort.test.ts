import assert from 'node:assert/strict';
import { it } from 'node:test';
import { evenPortValue, readEvenPort } from './evenPort.ts';

const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('EVEN-PORT is one byte with the R bit on top', () => {
  assert.deepEqual(readEvenPort(evenPortValue(true)), { reserveNext: true });
  assert.deepEqual(readEvenPort(Buffer.from([0x7f])), { reserveNext: false });
  assert.throws(() => readEvenPort(Buffer.alloc(4)), BAD);
});
