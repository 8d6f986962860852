/**
 * This side's NAT type, found by the SDK itself and reported in keepalives (`natType`,
 * docs/client.md "NAT type"). Platform-neutral: the probe comes in as a function (Node:
 * natDetectNode.ts, raw UDP; browser: natDetectBrowser.ts, an RTCPeerConnection's srflx
 * candidates). This file bounds it in time, runs it once per process and turns every failure
 * into `unknown`, so detection can never delay or break a connection.
 *
 * The values are those of `p2pd nat-type` (src/nat/classify.ts) plus two for what a partial
 * test can tell: `cone` (endpoint-independent mapping or no NAT, filtering not tested) and
 * `unknown`. The service's nat_type_total labels (src/signaling/flow.ts) include them all.
 */
import type { IceServerInit } from './http.ts';

export const NAT_TYPES = [
  'open internet', 'full cone', 'restricted cone', 'port-restricted cone', 'symmetric',
  'symmetric UDP firewall', 'UDP blocked', 'cone', 'unknown',
] as const;
export type NatType = (typeof NAT_TYPES)[number];

/** A plain STUN server (a `stun:` URL of the session's iceServers). */
export interface StunServerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * One detection run against `servers` (at least one). Resolves with a verdict; may reject (read
 * as `unknown`). Must stop sending and free its sockets once `signal` aborts.
 */
export type NatProbe = (servers: readonly StunServerAddress[], signal: AbortSignal) => Promise<NatType>;

export interface NatDetector {
  /**
   * This side's NAT type from the STUN servers in `iceServers`. Never rejects, settles within
   * the detector's bound; a verdict other than `unknown` is kept for the process's lifetime.
   */
  detect(iceServers: readonly IceServerInit[]): Promise<NatType>;
}

export interface NatDetectorOptions {
  /** The whole run's bound (default 3000 ms); past it the verdict is `unknown`. */
  readonly timeoutMs?: number;
  /** After an `unknown`, the next detect() runs again only this much later (default 60 s). */
  readonly retryUnknownMs?: number;
  readonly nowMs?: () => number;
}

export const NAT_DETECT_TIMEOUT_MS = 3000;
/** Servers a probe gets: two are enough for the mapping test (RFC 4787 §4.1). */
const MAX_SERVERS = 2;

const STUN_URL = /^stun:(?:\[([0-9a-fA-F:.]+)\]|([^:?[\]]+))(?::(\d{1,5}))?(?:\?.*)?$/;

/** The distinct plain STUN servers of an iceServers list, in order (TLS `stuns:` and TURN skipped). */
export function stunServers(iceServers: readonly IceServerInit[]): StunServerAddress[] {
  const out: StunServerAddress[] = [];
  const seen = new Set<string>();
  for (const s of iceServers) {
    for (const url of typeof s.urls === 'string' ? [s.urls] : s.urls) {
      const m = STUN_URL.exec(url.trim());
      if (!m) continue;
      const host = (m[1] ?? m[2]) as string;
      const port = m[3] === undefined ? 3478 : Number(m[3]);
      if (port < 1 || port > 65535) continue;
      const key = `${host.toLowerCase()}|${port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ host, port });
    }
  }
  return out;
}

/**
 * The mapping test (RFC 4787 §4.1): the mapped address two servers saw for one local port. The
 * same address and port from both is an endpoint-independent mapping (filtering untested:
 * `cone`); anything else a mapping that depends on the destination (`symmetric`).
 */
export function mappingVerdict(a: { address: string; port: number }, b: { address: string; port: number }): 'cone' | 'symmetric' {
  return a.address === b.address && a.port === b.port ? 'cone' : 'symmetric';
}

export function isNatType(v: unknown): v is NatType {
  return typeof v === 'string' && (NAT_TYPES as readonly string[]).includes(v);
}

/**
 * A detector around `probe`: one run at a time per process, bounded by `timeoutMs` (the probe
 * is aborted then), its verdict cached.
 */
export function natDetector(probe: NatProbe, opts: NatDetectorOptions = {}): NatDetector {
  const timeoutMs = opts.timeoutMs ?? NAT_DETECT_TIMEOUT_MS;
  const retryUnknownMs = opts.retryUnknownMs ?? 60_000;
  const nowMs = opts.nowMs ?? Date.now;
  let running: Promise<NatType> | undefined;
  let known: NatType | undefined;
  let unknownAt = -Infinity;

  const run = async (servers: readonly StunServerAddress[]): Promise<NatType> => {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<NatType>((resolve) => {
      timer = setTimeout(() => resolve('unknown'), timeoutMs);
      // A detection must never keep a finished process alive (Node; browsers have no unref).
      (timer as { unref?: () => void }).unref?.();
    });
    try {
      const verdict = await Promise.race([probe(servers.slice(0, MAX_SERVERS), ac.signal).catch((): NatType => 'unknown'), bound]);
      return isNatType(verdict) ? verdict : 'unknown';
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  };

  return {
    detect(iceServers) {
      if (known !== undefined) return Promise.resolve(known);
      if (running) return running;
      if (nowMs() - unknownAt < retryUnknownMs) return Promise.resolve('unknown');
      const servers = stunServers(iceServers);
      if (servers.length === 0) return Promise.resolve('unknown'); // nothing to ask: maybe the next session lists one
      running = run(servers).then((verdict) => {
        running = undefined;
        if (verdict === 'unknown') unknownAt = nowMs();
        else known = verdict;
        return verdict;
      });
      return running;
    },
  };
}
