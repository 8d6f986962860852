import { randomBytes } from 'node:crypto';
import { TRANSACTION_ID_LENGTH } from './constants.ts';

/** RFC 8489 §6: 96 bits from a cryptographically random source. */
export function newTransactionId(): Buffer {
  return randomBytes(TRANSACTION_ID_LENGTH);
}
