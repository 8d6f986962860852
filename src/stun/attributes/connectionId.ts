import { Attr } from '../constants.ts';
import { readUint32 } from './value.ts';

/**
 * CONNECTION-ID (RFC 6062 §6.2.1): 32 bits naming a TCP peer connection. Write it with
 * `MessageWriter.addUint32(Attr.ConnectionId, id)`.
 */
export function readConnectionId(value: Buffer): number {
  return readUint32(value, 'CONNECTION-ID', Attr.ConnectionId);
}
