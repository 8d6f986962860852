import { P2pdError } from '../errors.ts';

/**
 * Stable codes of MQTT signaling (CONTRACT.md §3). A refused message is answered with an `error`
 * message carrying one of these on the sender's own topic; nothing is forwarded. The same codes
 * appear in logs and in `signaling_errors_total{code}`. SESSION_NOT_FOUND and DEVICE_OFFLINE are
 * the session area's codes (session/errors.ts), reused here with the same meaning.
 */
export const SIGNALING_ERROR_CODES = [
  'BAD_JSON',
  'UNKNOWN_TYPE',
  'BAD_MESSAGE',
  'MESSAGE_TOO_LARGE',
  'FORGED_FROM',
  'FORBIDDEN',
  'DEVICE_OFFLINE',
  'SESSION_NOT_FOUND',
  'SESSION_CLOSED',
  'SESSION_REQUIRED',
  'TOKEN_INVALID',
  'TOKEN_EXPIRED',
  'INTERNAL',
] as const;

export type SignalingErrorCode = (typeof SIGNALING_ERROR_CODES)[number];

const STATUS: Record<SignalingErrorCode, number> = {
  BAD_JSON: 400,
  UNKNOWN_TYPE: 400,
  BAD_MESSAGE: 400,
  MESSAGE_TOO_LARGE: 413,
  FORGED_FROM: 403,
  FORBIDDEN: 403,
  DEVICE_OFFLINE: 409,
  SESSION_NOT_FOUND: 404,
  SESSION_CLOSED: 409,
  SESSION_REQUIRED: 400,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  INTERNAL: 500,
};

export class SignalingError extends P2pdError {
  declare readonly code: SignalingErrorCode;
  constructor(code: SignalingErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, STATUS[code], options);
  }
}

export const badJson = (why: string): SignalingError => new SignalingError('BAD_JSON', `message is not JSON: ${why}`);
export const unknownType = (type: string): SignalingError =>
  new SignalingError('UNKNOWN_TYPE', `unknown message type ${JSON.stringify(type.slice(0, 32))}`);
export const badMessage = (why: string): SignalingError => new SignalingError('BAD_MESSAGE', why);
export const messageTooLarge = (bytes: number, max: number): SignalingError =>
  new SignalingError('MESSAGE_TOO_LARGE', `message of ${bytes} bytes exceeds ${max} bytes`);
export const forgedFrom = (from: string, sender: string): SignalingError =>
  new SignalingError('FORGED_FROM', `"from" is ${JSON.stringify(from)} but the sender is ${JSON.stringify(sender)}`);
export const forbidden = (why: string): SignalingError => new SignalingError('FORBIDDEN', why);
export const deviceOffline = (deviceId: string): SignalingError =>
  new SignalingError('DEVICE_OFFLINE', `device ${JSON.stringify(deviceId)} is offline`);
export const sessionNotFound = (sessionId: string): SignalingError =>
  new SignalingError('SESSION_NOT_FOUND', `session ${JSON.stringify(sessionId)} not found`);
export const sessionClosed = (sessionId: string): SignalingError =>
  new SignalingError('SESSION_CLOSED', `session ${JSON.stringify(sessionId)} is closed`);
/** Only the service sends messages about no session in particular (its own `error` answers). */
export const sessionRequired = (type: string): SignalingError =>
  new SignalingError('SESSION_REQUIRED', `a peer ${type.slice(0, 32)} needs the "sessionId" of a session both ends belong to`);
export const internalError = (): SignalingError => new SignalingError('INTERNAL', 'the service could not handle the message');
