/**
 * Which of a session's ICE servers werift can reach (Node only). werift 0.24 takes the first TURN
 * URL of its iceServers and nothing else, and a session lists UDP, then TCP, then TLS
 * (src/cluster/iceServers.ts): behind a firewall that lets only TCP 80/443 out, werift would
 * wait for UDP, then for a TCP connection to port 3478 that never completes, and gather nothing.
 * So each TURN URL is asked a STUN Binding (RFC 8489 §6) over its own transport, all at once, and
 * the first URL in the list's order that answers is the one werift gets; a later URL is taken
 * when every earlier one has failed, or after PREFER_MS. The first STUN URL is asked too: when it
 * stays silent werift skips its server-reflexive query, which would hold gathering for ~6 s.
 * Browsers need none of this: they allocate on every URL and let ICE choose (docs/client.md
 * "Behind a firewall that blocks UDP").
 */
import { createSocket } from 'node:dgram';
import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import type { IceServerInit } from './http.ts';

export type TurnTransport = 'udp' | 'tcp' | 'tls';

export interface TurnUrl {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly transport: TurnTransport;
}

/** RFC 7065 §3.1: `turn:host[:port][?transport=udp|tcp]`, `turns:host[:port][?transport=tcp]`; undefined for anything else. */
export function parseTurnUrl(url: string): TurnUrl | undefined {
  const m = /^(turns?):(\[[0-9a-fA-F:.]+\]|[^:?[\]]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/i.exec(url.trim());
  if (!m) return undefined;
  const secure = (m[1] as string).toLowerCase() === 'turns';
  const param = m[4]?.toLowerCase();
  if (secure && param === 'udp') return undefined; // DTLS: not offered by p2pd nor spoken by werift
  const transport: TurnTransport = secure ? 'tls' : param === 'tcp' ? 'tcp' : 'udp';
  const port = m[3] === undefined ? (secure ? 5349 : 3478) : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { url, host: (m[2] as string).replace(/^\[|\]$/g, ''), port, transport };
}

/** A reachable TURN URL and the credentials of its server entry. */
export interface TurnChoice extends TurnUrl {
  readonly username: string | undefined;
  readonly credential: string | undefined;
}

/** An earlier URL in the list gets this long to answer before a later one that answered is taken. */
const PREFER_MS = 1000;
/** No URL answered within this: leave the list as it is (werift tries UDP, then TCP). */
const GIVE_UP_MS = 5000;
/** RFC 8489 §6.2.1: UDP retransmissions, doubling from 250 ms (a lower Rc: the probe is bounded). */
const UDP_RTO_MS = 250;
const MAX_PROBES = 6;

/** RFC 8489 §5: a Binding request, no attributes: type 0x0001, length 0, magic cookie, transaction ID. */
function bindingRequest(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(b, 8);
  return b;
}

/** A Binding success or error response to `req` (RFC 8489 §5: class bits 0x0110 set, method 1). */
function answers(res: Buffer, req: Buffer): boolean {
  if (res.length < 20) return false;
  const type = res.readUInt16BE(0);
  return (type === 0x0101 || type === 0x0111) && res.subarray(4, 20).equals(req.subarray(4, 20));
}

/** True once the server answered a Binding over the URL's transport; false on failure or `signal`. */
function probe(t: TurnUrl, signal: AbortSignal): Promise<boolean> {
  const req = bindingRequest();
  if (t.transport === 'udp') {
    return new Promise((resolve) => {
      const sock = createSocket(isIP(t.host) === 6 ? 'udp6' : 'udp4');
      let rto = UDP_RTO_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let closed = false;
      const done = (ok: boolean): void => {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', abort);
        sock.close();
        resolve(ok);
      };
      const abort = (): void => done(false);
      const send = (): void => {
        sock.send(req, t.port, t.host);
        timer = setTimeout(send, rto);
        rto *= 2;
      };
      // A send refused here (a local firewall's EPERM, no route, an unknown name) is a failure now.
      sock.on('error', () => done(false));
      sock.on('message', (msg) => { if (answers(msg, req)) done(true); });
      signal.addEventListener('abort', abort, { once: true });
      send();
    });
  }
  return new Promise((resolve) => {
    const sock: Socket = t.transport === 'tls'
      // Verified as werift will verify it: the system's CAs (and NODE_EXTRA_CA_CERTS), the URL's host.
      ? tlsConnect({ host: t.host, port: t.port, ...(isIP(t.host) === 0 ? { servername: t.host } : {}) })
      : tcpConnect({ host: t.host, port: t.port });
    let got = Buffer.alloc(0);
    let closed = false;
    const done = (ok: boolean): void => {
      if (closed) return;
      closed = true;
      signal.removeEventListener('abort', abort);
      sock.destroy();
      resolve(ok);
    };
    const abort = (): void => done(false);
    sock.once(t.transport === 'tls' ? 'secureConnect' : 'connect', () => sock.write(req));
    // RFC 8489 §6.2.2: over a stream a STUN message needs no framing; the answer is its first 20+ bytes.
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 20) done(answers(got, req));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
    signal.addEventListener('abort', abort, { once: true });
  });
}

/** The TURN URLs of a server list, in order, with their entry's credentials. */
export function turnUrlsOf(servers: readonly IceServerInit[]): TurnChoice[] {
  const out: TurnChoice[] = [];
  for (const s of servers) {
    for (const url of typeof s.urls === 'string' ? [s.urls] : s.urls) {
      const t = parseTurnUrl(url);
      if (t) out.push({ ...t, username: s.username, credential: s.credential });
    }
  }
  return out;
}

/** The first `stun:` URL (the one werift queries), as a UDP probe target. */
export function firstStunUrl(servers: readonly IceServerInit[]): TurnUrl | undefined {
  for (const s of servers) {
    for (const url of typeof s.urls === 'string' ? [s.urls] : s.urls) {
      const m = /^stun:(\[[0-9a-fA-F:.]+\]|[^:?[\]]+)(?::(\d{1,5}))?$/i.exec(url.trim());
      if (m) return { url, host: (m[1] as string).replace(/^\[|\]$/g, ''), port: m[2] === undefined ? 3478 : Number(m[2]), transport: 'udp' };
    }
  }
  return undefined;
}

export interface IceReach {
  /** The TURN URL to use; undefined: nothing to choose between, or nothing answered (keep the list). */
  readonly turn: TurnChoice | undefined;
  /** The first STUN URL did not answer over UDP in time: werift's server-reflexive query would only wait. */
  readonly stunSilent: boolean;
}

/**
 * Probes the first STUN URL and every TURN URL at once. The TURN URL is the first in order that
 * answers (a later one once the earlier have failed or PREFER_MS has passed); the STUN URL counts
 * as silent when it has not answered by then. Nothing that answered within GIVE_UP_MS leaves the
 * TURN choice to werift.
 */
export function probeIceServers(servers: readonly IceServerInit[]): Promise<IceReach> {
  const turns = turnUrlsOf(servers).slice(0, MAX_PROBES);
  const stun = firstStunUrl(servers);
  const choose = turns.length > 1;
  if (!choose && stun === undefined) return Promise.resolve({ turn: undefined, stunSilent: false });
  const ctl = new AbortController();
  const turnState: Array<boolean | undefined> = turns.map(() => undefined);
  let stunState: boolean | undefined;
  return new Promise((resolve) => {
    let preferEarlier = true;
    const finish = (turn: TurnChoice | undefined): void => {
      clearTimeout(preferTimer);
      clearTimeout(giveUpTimer);
      ctl.abort();
      resolve({ turn, stunSilent: stun !== undefined && stunState !== true });
    };
    /** The TURN URL to take now; null while an earlier URL may still answer. */
    const pick = (): TurnChoice | undefined | null => {
      if (!choose) return undefined;
      for (let i = 0; i < turns.length; i++) {
        if (turnState[i] === true) return turns[i];
        if (turnState[i] === undefined && preferEarlier) return null;
      }
      return turnState.every((t) => t === false) ? undefined : null;
    };
    const decide = (): void => {
      if (stun !== undefined && stunState === undefined && preferEarlier) return;
      const turn = pick();
      if (turn !== null) finish(turn);
    };
    const preferTimer = setTimeout(() => { preferEarlier = false; decide(); }, PREFER_MS);
    const giveUpTimer = setTimeout(() => finish(undefined), GIVE_UP_MS);
    if (stun !== undefined) {
      void probe(stun, ctl.signal).then((ok) => {
        if (ctl.signal.aborted) return;
        stunState = ok;
        decide();
      });
    }
    if (choose) {
      turns.forEach((u, i) => {
        void probe(u, ctl.signal).then((ok) => {
          if (ctl.signal.aborted) return;
          turnState[i] = ok;
          decide();
        });
      });
    }
  });
}

/** How long a probe's verdict stands for the same URLs (a network change outlives it by little). */
export const REACH_TTL_MS = 30_000;
const REACH_CACHE_MAX = 16;

interface ReachVerdict {
  readonly atMs: number;
  readonly turnUrl: string | undefined;
  readonly stunSilent: boolean;
}

const verdicts = new Map<string, ReachVerdict>();
const inFlight = new Map<string, Promise<IceReach>>();

/** The URLs a probe looks at, credentials left out: sessions of one service share them. */
function reachKey(servers: readonly IceServerInit[]): string {
  return JSON.stringify([firstStunUrl(servers)?.url ?? null, ...turnUrlsOf(servers).slice(0, MAX_PROBES).map((t) => t.url)]);
}

/**
 * probeIceServers, remembered per process for REACH_TTL_MS: every session of a service lists the
 * same URLs (with its own credentials), so a camera's later viewers and an app's later calls
 * skip the probe's round trip before gathering (docs/client.md "Setup time"). The chosen URL
 * comes back with the credentials of `servers`; probes of the same URLs at once share one.
 */
export function probeIceServersCached(servers: readonly IceServerInit[], nowMs: () => number = Date.now): Promise<IceReach> {
  const key = reachKey(servers);
  const v = verdicts.get(key);
  if (v !== undefined && nowMs() - v.atMs < REACH_TTL_MS) return Promise.resolve({ turn: withCredentials(servers, v.turnUrl), stunSilent: v.stunSilent });
  const running = inFlight.get(key);
  if (running) return running.then((r) => ({ turn: withCredentials(servers, r.turn?.url), stunSilent: r.stunSilent }));
  const p = probeIceServers(servers).then((r) => {
    inFlight.delete(key);
    verdicts.delete(key);
    verdicts.set(key, { atMs: nowMs(), turnUrl: r.turn?.url, stunSilent: r.stunSilent });
    for (const k of verdicts.keys()) {
      if (verdicts.size <= REACH_CACHE_MAX) break;
      verdicts.delete(k);
    }
    return r;
  });
  inFlight.set(key, p);
  return p;
}

/** The TURN URL `url` of `servers`, with the credentials of its entry there. */
function withCredentials(servers: readonly IceServerInit[], url: string | undefined): TurnChoice | undefined {
  return url === undefined ? undefined : turnUrlsOf(servers).find((t) => t.url === url);
}

/** Forgets every remembered verdict (tests; a client that knows its network changed). */
export function forgetIceReach(): void {
  verdicts.clear();
}
