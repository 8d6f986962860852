/**
 * Stable codes of the client SDK. Every way a connection can fail ends in one of these — a
 * connect() that rejects, or an `error` event on a live connection — never in a silent hang.
 * Codes the service sends (HTTP `{"error": {"code"}}` or an MQTT `error` message) keep their
 * code when it is one of these; others are wrapped in SESSION_FAILED with `serverCode`.
 * Browser-safe: no Node imports.
 */
import { P2pdError, type CodeOn, type ErrorCode } from '../errors.ts';

/** The SDK's codes; each is in the catalogue (src/errors.ts) with its meaning, shown on `sdk`. */
export const SDK_ERROR_CODES = [
  'DEVICE_OFFLINE', 'ICE_FAILED', 'TIMEOUT', 'SIGNALING_UNAVAILABLE', 'AUTH_FAILED', 'FORBIDDEN',
  'SESSION_FAILED', 'DEVICE_ERROR', 'PEER_GONE', 'CLOSED', 'BAD_OPTIONS', 'MEDIA_UNAVAILABLE',
] as const satisfies readonly CodeOn<'sdk'>[];

export type SdkErrorCode = (typeof SDK_ERROR_CODES)[number];

export class SdkError extends P2pdError<SdkErrorCode> {
  /** The service's or device's own code when it differs from `code`. */
  readonly serverCode: string | undefined;

  constructor(code: SdkErrorCode, message: string, opts: { serverCode?: string; cause?: unknown } = {}) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.serverCode = opts.serverCode;
  }

  override toJSON(): { code: string; message: string; serverCode?: string } {
    return this.serverCode === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, serverCode: this.serverCode };
  }
}

export const isSdkError = (err: unknown, code?: SdkErrorCode): err is SdkError =>
  err instanceof SdkError && (code === undefined || err.code === code);

export const timeout = (what: string, ms: number): SdkError => new SdkError('TIMEOUT', `${what} did not finish within ${ms} ms`);
export const badOptions = (why: string): SdkError => new SdkError('BAD_OPTIONS', why);
export const closedError = (): SdkError => new SdkError('CLOSED', 'the connection is closed');
export const iceFailed = (why: string): SdkError => new SdkError('ICE_FAILED', why);
export const peerGone = (why: string): SdkError => new SdkError('PEER_GONE', why);
export const signalingUnavailable = (why: string, cause?: unknown): SdkError => new SdkError('SIGNALING_UNAVAILABLE', why, { cause });

/** Service codes that mean "the token is not good". */
const AUTH_CODES = new Set<string>(['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED'] satisfies ErrorCode[]);
/** Service codes that mean "the other side is not there (any more)". */
const GONE_CODES = new Set<string>(['SESSION_UNKNOWN', 'SESSION_CLOSED'] satisfies ErrorCode[]);

/** The SDK error for a code the service (HTTP or MQTT) or the device sent. */
export function fromRemote(serverCode: string, message: string, source: 'service' | 'device'): SdkError {
  if ((SDK_ERROR_CODES as readonly string[]).includes(serverCode)) return new SdkError(serverCode as SdkErrorCode, message);
  if (AUTH_CODES.has(serverCode)) return new SdkError('AUTH_FAILED', message, { serverCode });
  if (GONE_CODES.has(serverCode)) return new SdkError('PEER_GONE', message, { serverCode });
  // The service's cap of viewers and the device's own read the same to an app (docs/client.md
  // "Many viewers").
  if (serverCode === 'DEVICE_BUSY') return new SdkError('DEVICE_ERROR', `${message} [${serverCode}]`, { serverCode });
  return new SdkError(source === 'device' ? 'DEVICE_ERROR' : 'SESSION_FAILED', `${message} [${serverCode}]`, { serverCode });
}

/** Any thrown value as an SdkError (unknown failures become `fallback`). */
export function asSdkError(err: unknown, fallback: SdkErrorCode = 'SESSION_FAILED'): SdkError {
  if (err instanceof SdkError) return err;
  return new SdkError(fallback, err instanceof Error ? err.message : String(err), { cause: err });
}
