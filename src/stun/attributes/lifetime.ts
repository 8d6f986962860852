import { Attr } from '../constants.ts';
import { readUint32 } from './value.ts';

/**
 * LIFETIME (RFC 8656 §18.4): seconds until the allocation expires. Write it with
 * `MessageWriter.addUint32(Attr.Lifetime, lifetimeSec)`.
 */
export function readLifetime(value: Buffer): number {
  return readUint32(value, 'LIFETIME', Attr.Lifetime);
}
