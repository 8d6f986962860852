/**
 * Session creation over MQTT (a `session` message on p2p/signal/server). The signaling service
 * checks what only it can check (who asks, the device's presence) and then calls the same
 * creation the HTTP API uses (`POST /v1/sessions`), handed in as a CreateSession function, so
 * both doors follow the same rules and give the same session object.
 */
import { randomUUID } from 'node:crypto';
import type { ClientClaims } from '../auth/token.ts';
import { newSession, nowSec } from '../session/model.ts';
import type { SessionStore } from '../session/store.ts';

/** The session object of CONTRACT.md §2 (with `iceServers` for the caller). */
export interface SessionAnswer {
  readonly sessionId: string;
  readonly [field: string]: unknown;
}

/**
 * Creates a session for an app that may reach the device (the caller has checked the token and
 * presence). Throws P2pdError with a stable code (NO_TURN_NODE, STORE_UNAVAILABLE, …) on failure.
 */
export type CreateSession = (req: { readonly appId: string; readonly deviceId: string; readonly claims: ClientClaims }) => Promise<SessionAnswer>;

/**
 * A minimal CreateSession straight on the store, for a node whose session API is not wired: the
 * record only, no TURN node choice and no `iceServers`.
 */
export function createSessionInStore(store: SessionStore, opts: { region: string; ttlSec: number; stunServer: string; turnNode: string }): CreateSession {
  return async ({ appId, deviceId }) => {
    const session = newSession({
      sessionId: randomUUID(), appId, deviceId, stunServer: opts.stunServer, turnNode: opts.turnNode,
      region: opts.region, ttl: opts.ttlSec, now: nowSec(),
    });
    await store.create(session);
    return { ...session, iceServers: [] };
  };
}
