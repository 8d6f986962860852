import { createHash } from 'node:crypto';
import { Attr } from '../constants.ts';
import { expectLength } from './value.ts';

/** USERHASH (RFC 8489 §14.4): SHA-256 of username ":" realm, sent instead of USERNAME. */
export const USERHASH_LENGTH = 32;

/** The 32 bytes (a view of `value`). */
export function readUserhash(value: Buffer): Buffer {
  expectLength(value, USERHASH_LENGTH, 'USERHASH', Attr.Userhash);
  return value;
}

/** SHA-256(username ":" realm), both as UTF-8 without OpaqueString preparation. */
export function computeUserhash(username: string, realm: string): Buffer {
  return createHash('sha256').update(`${username}:${realm}`, 'utf8').digest();
}
