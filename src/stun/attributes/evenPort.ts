import { Attr } from '../constants.ts';
import { expectLength } from './value.ts';

/**
 * EVEN-PORT (RFC 8656 §18.6): one byte whose top bit R asks to reserve the next port too.
 * Write it with `MessageWriter.addAttr(Attr.EvenPort, evenPortValue(…))`.
 */
export function readEvenPort(value: Buffer): { reserveNext: boolean } {
  expectLength(value, 1, 'EVEN-PORT', Attr.EvenPort);
  return { reserveNext: (value[0]! & 0x80) !== 0 };
}

const RESERVE = Buffer.from([0x80]);
const NO_RESERVE = Buffer.from([0x00]);

export function evenPortValue(reserveNext: boolean): Buffer {
  return reserveNext ? RESERVE : NO_RESERVE;
}
