import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readReservationToken } from './reservationToken.ts';

const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('RESERVATION-TOKEN is 8 bytes', () => {
  assert.equal(readReservationToken(Buffer.alloc(8, 9)).length, 8);
  assert.throws(() => readReservationToken(Buffer.alloc(4)), BAD);
});
