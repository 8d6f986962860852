import { Attr } from '../constants.ts';
import { expectLength, readUint32 } from './value.ts';

/**
 * ICE attributes (RFC 8445 §16.1): PRIORITY (32 bits), USE-CANDIDATE (empty),
 * ICE-CONTROLLED and ICE-CONTROLLING (a 64-bit tie-breaker; write with `addUint64`).
 */
export function readPriority(value: Buffer): number {
  return readUint32(value, 'PRIORITY', Attr.Priority);
}

export function readTieBreaker(value: Buffer): bigint {
  expectLength(value, 8, 'ICE tie-breaker', Attr.IceControlling);
  return value.readBigUInt64BE(0);
}
