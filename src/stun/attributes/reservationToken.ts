import { Attr } from '../constants.ts';
import { expectLength } from './value.ts';

/** RESERVATION-TOKEN (RFC 8656 §18.9): 8 opaque bytes. */
export const RESERVATION_TOKEN_LENGTH = 8;

/** The token (a view of `value`). */
export function readReservationToken(value: Buffer): Buffer {
  expectLength(value, RESERVATION_TOKEN_LENGTH, 'RESERVATION-TOKEN', Attr.ReservationToken);
  return value;
}
