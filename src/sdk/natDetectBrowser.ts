/**
 * NAT detection in the browser, where there are no raw sockets: a throw-away RTCPeerConnection
 * with the session's STUN servers gathers candidates, and the server-reflexive ones tell the
 * mapping (RFC 4787 §4.1) — one local socket asked two servers, so different srflx ports mean a
 * destination-dependent mapping. Filtering cannot be tested from a browser, so the values are
 * `cone`, `symmetric`, `UDP blocked` and `unknown`. No Node imports.
 *
 * Chrome drops a srflx candidate equal to one another server already gave (WebRTC's UDPPort),
 * so an endpoint-independent mapping shows as one srflx while the second server answered
 * without an error; a server that does not answer fires icecandidateerror (701).
 */
import { natDetector, type NatDetector, type NatProbe, type NatType, type StunServerAddress } from './natDetect.ts';

/** What gathering showed: srflx candidates and errors by STUN URL. */
export interface GatheringObservation {
  /** The STUN URLs asked, e.g. `stun:192.0.2.1:3478`. */
  readonly urls: readonly string[];
  /** Server-reflexive candidates: which URL gave each, and its address and port. */
  readonly srflx: ReadonlyArray<{ readonly url: string | undefined; readonly address: string; readonly port: number }>;
  /** URLs that reported an error (e.g. 701: no answer). */
  readonly failedUrls: readonly string[];
  /** Gathering finished (the null candidate); false when the probe stopped waiting first. */
  readonly complete: boolean;
}

/**
 * How long the probe waits for gathering (inside natDetect.ts's 3 s bound). A STUN server that
 * has not answered by then is as good as blocked: browsers retransmit for far longer.
 */
export const GATHERING_WAIT_MS = 2500;

/** The verdict of one gathering (pure; tested alone). */
export function gatheringVerdict(o: GatheringObservation): NatType {
  const failed = new Set(o.failedUrls);
  const answered = o.urls.filter((u) => !failed.has(u));
  if (o.srflx.length === 0) {
    if (o.urls.length === 0) return 'unknown';
    // Nothing answered: every server failed, or none had answered when the wait ended.
    if (answered.length === 0 || !o.complete) return 'UDP blocked';
    // Every server answered with the host address itself (no NAT; Chrome then keeps no srflx).
    return answered.length === o.urls.length ? 'cone' : 'unknown';
  }
  const byUrl = new Map<string, Set<string>>();
  for (const c of o.srflx) {
    const key = c.url ?? '';
    let set = byUrl.get(key);
    if (!set) byUrl.set(key, (set = new Set()));
    set.add(`${c.address}|${c.port}`);
  }
  const ports = new Set(o.srflx.map((c) => c.port));
  // Two servers gave mappings that are not the same: it depends on the destination.
  if (byUrl.size >= 2 && ports.size > 1) return 'symmetric';
  if (o.urls.length < 2) return 'unknown';
  // One mapping, and the other server answered too (its equal srflx was dropped as redundant).
  if (answered.length >= 2 && (o.complete || byUrl.size >= 2)) return 'cone';
  return 'unknown';
}

const SRFLX = /\btyp srflx\b/;

/** `candidate:… 1 udp 1686052607 192.0.2.7 54321 typ srflx …` → address and port. */
export function srflxOf(candidate: string): { address: string; port: number } | undefined {
  if (!SRFLX.test(candidate)) return undefined;
  const f = candidate.trim().split(/\s+/);
  if (f.length < 8 || f[2]?.toLowerCase() !== 'udp') return undefined;
  const port = Number(f[5]);
  return Number.isInteger(port) ? { address: f[4] as string, port } : undefined;
}

const urlOf = (s: StunServerAddress): string => `stun:${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;

/** The probe: one RTCPeerConnection, a data channel to make it gather, closed at the end. */
export const browserNatProbe: NatProbe = (servers, signal) => new Promise<NatType>((resolve) => {
  const urls = servers.map(urlOf);
  const srflx: Array<{ url: string | undefined; address: string; port: number }> = [];
  const failed: string[] = [];
  let pc: RTCPeerConnection;
  try {
    pc = new RTCPeerConnection({ iceServers: urls.map((u) => ({ urls: u })) });
  } catch {
    resolve('unknown');
    return;
  }
  let done = false;
  const finish = (complete: boolean): void => {
    if (done) return;
    done = true;
    clearTimeout(wait);
    signal.removeEventListener('abort', onAbort);
    pc.close();
    resolve(gatheringVerdict({ urls, srflx, failedUrls: failed, complete }));
  };
  const onAbort = (): void => finish(false);
  signal.addEventListener('abort', onAbort, { once: true });
  const wait = setTimeout(() => finish(false), GATHERING_WAIT_MS);
  pc.onicecandidate = (e) => {
    if (!e.candidate) {
      finish(true);
      return;
    }
    const c = srflxOf(e.candidate.candidate);
    // RTCIceCandidate.url (newer) or the event's (older Chrome): which server gave it.
    const url = (e.candidate as RTCIceCandidate & { url?: string | null }).url ?? (e as RTCPeerConnectionIceEvent & { url?: string | null }).url;
    if (c) srflx.push({ url: url ?? undefined, ...c });
  };
  pc.onicecandidateerror = (e) => {
    if (e.url && !failed.includes(e.url)) failed.push(e.url);
  };
  pc.createDataChannel('natdetect');
  pc.createOffer().then((offer) => pc.setLocalDescription(offer)).catch(() => finish(false));
});

/** The page's detector (browser.ts hands it to connect()). */
export const browserNatDetector: NatDetector = natDetector(browserNatProbe);
