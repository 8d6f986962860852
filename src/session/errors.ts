import { P2pdError } from '../errors.ts';

/**
 * Stable codes of the session area, used in HTTP answers, MQTT `error` messages and logs alike.
 * Token errors (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, FORBIDDEN) live in auth/errors.ts.
 */
export type SessionErrorCode =
  | 'SESSION_NOT_FOUND'
  | 'SESSION_EXISTS'
  | 'DEVICE_OFFLINE'
  | 'NO_TURN_NODE'
  | 'STORE_UNAVAILABLE'
  | 'TOO_MANY_SESSIONS';

const STATUS: Record<SessionErrorCode, number> = {
  SESSION_NOT_FOUND: 404,
  SESSION_EXISTS: 409,
  DEVICE_OFFLINE: 409,
  NO_TURN_NODE: 503,
  STORE_UNAVAILABLE: 503,
  TOO_MANY_SESSIONS: 429,
};

export class SessionError extends P2pdError {
  declare readonly code: SessionErrorCode;
  constructor(code: SessionErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, STATUS[code], options);
  }
}

export const sessionNotFound = (sessionId: string): SessionError =>
  new SessionError('SESSION_NOT_FOUND', `session ${JSON.stringify(sessionId)} not found`);
export const sessionExists = (sessionId: string): SessionError =>
  new SessionError('SESSION_EXISTS', `session ${JSON.stringify(sessionId)} already exists`);
export const deviceOffline = (deviceId: string): SessionError =>
  new SessionError('DEVICE_OFFLINE', `device ${JSON.stringify(deviceId)} is offline`);
export const noTurnNode = (region: string): SessionError =>
  new SessionError('NO_TURN_NODE', `no TURN node can take a session (region ${JSON.stringify(region)}): none healthy, all draining or at capacity`);
export const storeUnavailable = (cause?: unknown): SessionError =>
  new SessionError('STORE_UNAVAILABLE', 'session store unavailable', cause === undefined ? undefined : { cause });

export const tooManySessions = (appId: string, max: number): SessionError =>
  new SessionError('TOO_MANY_SESSIONS', `app ${JSON.stringify(appId)} has ${max} open sessions, the most --max-sessions-per-app allows: close one first`);
