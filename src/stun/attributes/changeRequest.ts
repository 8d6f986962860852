import { Attr } from '../constants.ts';
import { readUint32 } from './value.ts';

/** CHANGE-REQUEST (RFC 5780 §7.2): ask the server to answer from its other IP and/or port. */
export const CHANGE_IP = 0x4;
export const CHANGE_PORT = 0x2;

export interface ChangeRequest {
  changeIp: boolean;
  changePort: boolean;
}

export function readChangeRequest(value: Buffer): ChangeRequest {
  const flags = readUint32(value, 'CHANGE-REQUEST', Attr.ChangeRequest);
  return { changeIp: (flags & CHANGE_IP) !== 0, changePort: (flags & CHANGE_PORT) !== 0 };
}

/** The 32-bit value, for `MessageWriter.addUint32(Attr.ChangeRequest, …)`. */
export function changeRequestValue(change: ChangeRequest): number {
  return (change.changeIp ? CHANGE_IP : 0) | (change.changePort ? CHANGE_PORT : 0);
}
