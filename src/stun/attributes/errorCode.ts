import { Attr } from '../constants.ts';
import { StunDecodeError, StunEncodeError } from '../errors.ts';
import { MAX_SEND_TEXT_BYTES, MAX_SEND_TEXT_CHARS, MAX_TEXT_BYTES, charCount } from './text.ts';
import { readUtf8 } from './value.ts';

/** ERROR-CODE (RFC 8489 §14.8): class (3-6) and number (0-99), then a UTF-8 reason phrase. */

/** Error codes of RFC 8489 §14.8, RFC 8656 §18.9, RFC 6062 §6.3, RFC 8016 §3.5, RFC 8445 §7.3. */
export const ErrorCode = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  MobilityForbidden: 405,
  UnknownAttribute: 420,
  AllocationMismatch: 437,
  StaleNonce: 438,
  AddressFamilyNotSupported: 440,
  WrongCredentials: 441,
  UnsupportedTransportProtocol: 442,
  PeerAddressFamilyMismatch: 443,
  ConnectionAlreadyExists: 446,
  ConnectionTimeoutOrFailure: 447,
  AllocationQuotaReached: 486,
  RoleConflict: 487,
  ServerError: 500,
  InsufficientCapacity: 508,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const REASONS: ReadonlyMap<number, string> = new Map([
  [300, 'Try Alternate'],
  [400, 'Bad Request'],
  [401, 'Unauthenticated'],
  [403, 'Forbidden'],
  [405, 'Mobility Forbidden'],
  [420, 'Unknown Attribute'],
  [437, 'Allocation Mismatch'],
  [438, 'Stale Nonce'],
  [440, 'Address Family not Supported'],
  [441, 'Wrong Credentials'],
  [442, 'Unsupported Transport Protocol'],
  [443, 'Peer Address Family Mismatch'],
  [446, 'Connection Already Exists'],
  [447, 'Connection Timeout or Failure'],
  [486, 'Allocation Quota Reached'],
  [487, 'Role Conflict'],
  [500, 'Server Error'],
  [508, 'Insufficient Capacity'],
]);

/** The RFC's reason phrase for a code, or "" for codes it does not name. */
export function errorReason(code: number): string {
  return REASONS.get(code) ?? '';
}

export interface ErrorCodeValue {
  code: number;
  reason: string;
}

export function readErrorCode(value: Buffer): ErrorCodeValue {
  const len = value.length;
  if (len < 4) throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `ERROR-CODE of ${len} bytes`, Attr.ErrorCode);
  const cls = value[2]! & 0x07;
  const number = value[3]!;
  if (cls < 3 || cls > 6 || number > 99) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', `ERROR-CODE class ${cls} number ${number}`, Attr.ErrorCode);
  }
  const reason = readUtf8(value.subarray(4), MAX_TEXT_BYTES, 'ERROR-CODE reason', Attr.ErrorCode);
  return { code: cls * 100 + number, reason };
}

/** Bytes of the reason phrase, after checking the code (300-699) and the sending limit. */
export function errorCodeReasonLength(code: number, reason: string): number {
  if (!Number.isInteger(code) || code < 300 || code > 699) {
    throw new StunEncodeError('STUN_BAD_VALUE', `error code ${code} is not within 300-699`);
  }
  const bytes = Buffer.byteLength(reason, 'utf8');
  if (bytes > MAX_SEND_TEXT_BYTES || (reason.length > MAX_SEND_TEXT_CHARS && charCount(reason) > MAX_SEND_TEXT_CHARS)) {
    throw new StunEncodeError('STUN_VALUE_TOO_LONG', `reason phrase of ${bytes} bytes`);
  }
  return bytes;
}

/** Writes the value at `offset`; `reasonBytes` from {@link errorCodeReasonLength}. */
export function writeErrorCodeValue(target: Buffer, offset: number, code: number, reason: string, reasonBytes: number): void {
  target.writeUInt16BE(0, offset);
  target[offset + 2] = Math.floor(code / 100);
  target[offset + 3] = code % 100;
  target.write(reason, offset + 4, reasonBytes, 'utf8');
}
