/**
 * Which paths a connection may take. `all` and `relay` are the W3C RTCIceTransportPolicy values
 * and bind this end only; `direct` is the SDK's own and binds both ends: no TURN server is given
 * to either peer (the app tells the device in its offer), and relayed candidates that arrive
 * anyway (from a device that ignores the request) are dropped. A device behind a symmetric NAT
 * then cannot be reached — `direct` is for LANs, tests and operators who must not relay.
 */
import type { IceServerInit } from './http.ts';
import type { CandidateInit } from './rtc.ts';

export type IcePolicy = 'all' | 'relay' | 'direct';

/** The STUN part of a list of ICE servers: TURN URLs (turn:, turns:) removed. */
export function withoutTurn(servers: readonly IceServerInit[]): IceServerInit[] {
  const out: IceServerInit[] = [];
  for (const s of servers) {
    const urls = (typeof s.urls === 'string' ? [s.urls] : s.urls).filter((u) => /^stuns?:/i.test(u));
    if (urls.length > 0) out.push({ urls });
  }
  return out;
}

// RFC 8839 §5.1: candidate-attribute = "candidate:" foundation SP component-id SP transport SP
// priority SP connection-address SP port SP "typ" SP cand-type ...
const RELAY_TYPE = /\styp\s+relay(\s|$)/i;

export function isRelayCandidate(c: CandidateInit): boolean {
  return RELAY_TYPE.test(c.candidate);
}

/** The SDP without its `a=candidate` lines of type relay. */
export function withoutRelayCandidates(sdp: string): string {
  return sdp.split(/(?<=\r?\n)/).filter((line) => !(line.startsWith('a=candidate:') && RELAY_TYPE.test(line))).join('');
}
