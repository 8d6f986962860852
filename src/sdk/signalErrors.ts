/**
 * What an app does with an `error` message (docs/signaling.md "Errors"): the service's
 * SESSION_NOT_FOUND once connected means it lost the session (a one-node p2pd restarted), and
 * the app creates it again under the same id, at most once per RECREATE_MIN_INTERVAL_MS;
 * anything else is an SdkError (errors.ts fromRemote) that fails the setup, goes to a recovery
 * in progress, ends the connection (PEER_GONE) or is a warning.
 */
import type { Clock } from './clock.ts';
import { asSdkError, fromRemote, isSdkError, type SdkError } from './errors.ts';
import type { SignalMessage } from './signaling.ts';

export const RECREATE_MIN_INTERVAL_MS = 3000;

export type SignalErrorVerdict =
  | { readonly kind: 'session-lost' }
  | { readonly kind: 'error'; readonly error: SdkError };

/** Reads an `error` message from the service or from `deviceId`. */
export function readSignalError(m: SignalMessage, deviceId: string, connecting: boolean): SignalErrorVerdict {
  const code = typeof m.payload.code === 'string' ? m.payload.code : 'UNKNOWN';
  const message = typeof m.payload.message === 'string' ? m.payload.message : code;
  const fromDevice = m.from === deviceId;
  if (!fromDevice && code === 'SESSION_NOT_FOUND' && !connecting) return { kind: 'session-lost' };
  return { kind: 'error', error: fromRemote(code, message, fromDevice ? 'device' : 'service') };
}

export interface SessionRecreatorOptions {
  readonly clock: Clock;
  /** Creates the session again under its id (POST /v1/sessions with the sessionId). */
  readonly create: () => Promise<unknown>;
  readonly onCreated: () => void;
  readonly warn: (err: SdkError) => void;
}

/** Creates a lost session again, at most once per RECREATE_MIN_INTERVAL_MS. */
export class SessionRecreator {
  private readonly opts: SessionRecreatorOptions;
  private lastAt = 0;

  constructor(opts: SessionRecreatorOptions) {
    this.opts = opts;
  }

  async lost(): Promise<void> {
    const now = this.opts.clock.now();
    if (now - this.lastAt < RECREATE_MIN_INTERVAL_MS) return;
    this.lastAt = now;
    try {
      await this.opts.create();
      this.opts.onCreated();
    } catch (err) {
      // It is there again already.
      if (isSdkError(err) && err.serverCode === 'SESSION_EXISTS') return;
      this.opts.warn(asSdkError(err));
    }
  }
}
