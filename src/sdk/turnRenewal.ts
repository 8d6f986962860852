/**
 * When the TURN credentials of a session run out: the TURN REST username starts with their
 * expiry in unix seconds ("<expiry>:<sessionId>", docs/turn.md "REST credentials"), and a relay
 * allocation ends with its credentials. A call that outlives them must move to fresh ones
 * before: the app restarts ICE with the session's current ICE servers (docs/client.md "Long
 * calls") a margin ahead of the earliest expiry.
 */
import type { IceServerInit } from './http.ts';

/** The earliest expiry (unix ms) among the TURN credentials in `servers`; undefined when none says. */
export function turnExpiryMs(servers: readonly IceServerInit[]): number | undefined {
  let earliest: number | undefined;
  for (const s of servers) {
    const urls = typeof s.urls === 'string' ? [s.urls] : s.urls;
    if (!urls.some((u) => /^turns?:/i.test(u)) || s.username === undefined) continue;
    const head = /^(\d{9,12}):/.exec(s.username);
    if (!head) continue;
    const ms = Number(head[1]) * 1000;
    if (earliest === undefined || ms < earliest) earliest = ms;
  }
  return earliest;
}

/** How far ahead of the expiry to move: a fifth of what is left, between 2 s and 10 min. */
export function renewalMarginMs(lifetimeMs: number): number {
  return Math.max(2000, Math.min(10 * 60_000, lifetimeMs / 5));
}

/** Ms from `nowMs` until the renewal is due (0: now), or undefined when nothing expires. */
export function renewalDelayMs(servers: readonly IceServerInit[], nowMs: number): number | undefined {
  const expiry = turnExpiryMs(servers);
  if (expiry === undefined) return undefined;
  const left = expiry - nowMs;
  return Math.max(0, left - renewalMarginMs(left));
}
