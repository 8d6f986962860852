/**
 * The sessions the service announced to this device (`session` from `server`, docs/signaling.md
 * "Session notices"), each with the ICE servers minted for the device. The offer of such a
 * session needs no `GET /v1/sessions/{id}`: a round trip less before the answer.
 *
 * Bounded: at most MAX_NOTICES are kept, each for at most MAX_AGE_MS (an announced session
 * whose app never offers is forgotten), and a notice is used once.
 */
import type { IceServerInit } from './http.ts';

export const MAX_NOTICES = 64;
export const MAX_AGE_MS = 60_000;

interface Notice {
  readonly iceServers: readonly IceServerInit[];
  readonly atMs: number;
}

export class NoticedSessions {
  private readonly notices = new Map<string, Notice>();

  /** Keeps the ICE servers of `sessionId`, dropping the oldest notice past MAX_NOTICES. */
  put(sessionId: string, iceServers: readonly IceServerInit[], nowMs: number): void {
    this.notices.delete(sessionId);
    this.notices.set(sessionId, { iceServers, atMs: nowMs });
    for (const id of this.notices.keys()) {
      if (this.notices.size <= MAX_NOTICES) break;
      this.notices.delete(id);
    }
  }

  /** The ICE servers announced for `sessionId` (once), unless too old. */
  take(sessionId: string, nowMs: number): readonly IceServerInit[] | undefined {
    const n = this.notices.get(sessionId);
    if (!n) return undefined;
    this.notices.delete(sessionId);
    return nowMs - n.atMs <= MAX_AGE_MS ? n.iceServers : undefined;
  }

  get size(): number {
    return this.notices.size;
  }
}

/** The ICE servers of a notice's payload (the session object), or undefined when malformed. */
export function noticeIceServers(payload: Readonly<Record<string, unknown>>): IceServerInit[] | undefined {
  const list = payload.iceServers;
  if (!Array.isArray(list) || list.length === 0 || list.length > 16) return undefined;
  const out: IceServerInit[] = [];
  for (const s of list as unknown[]) {
    if (typeof s !== 'object' || s === null) return undefined;
    const { urls, username, credential } = s as Record<string, unknown>;
    const urlList = typeof urls === 'string' ? [urls] : urls;
    if (!Array.isArray(urlList) || urlList.length === 0 || !urlList.every((u) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u))) return undefined;
    if (username !== undefined && typeof username !== 'string') return undefined;
    if (credential !== undefined && typeof credential !== 'string') return undefined;
    out.push({ urls: urlList as string[], ...(username === undefined ? {} : { username }), ...(credential === undefined ? {} : { credential }) });
  }
  return out;
}
