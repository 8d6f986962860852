/**
 * ICE server lists (RTCIceServer) for a caller: STUN nearest first (each node's RFC 5780 alternate
 * address after its primary one), then the session's TURN node with TURN REST credentials over
 * UDP, TCP and, when the node has TLS, TLS.
 */
import { mintTurnRestCredentials } from '../auth/turnRest.ts';
import { hostPort, type NodeInfo } from './nodeInfo.ts';

export interface IceServer {
  readonly urls: readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

export const stunUrl = (n: Pick<NodeInfo, 'host' | 'port'>): string => `stun:${hostPort(n.host, n.port)}`;

/**
 * The order is the preference: Node clients on werift take the first of them that answers
 * (src/sdk/turnReach.ts); browsers allocate on each. The turns: URL names the certificate's host
 * (--tls-host), since clients verify it (docs/turn.md "Clients behind firewalls that block UDP").
 */
export function turnUrls(n: Pick<NodeInfo, 'host' | 'port' | 'tlsPort' | 'tlsHost'>): string[] {
  const hp = hostPort(n.host, n.port);
  const urls = [`turn:${hp}?transport=udp`, `turn:${hp}?transport=tcp`];
  if (n.tlsPort !== undefined) urls.push(`turns:${hostPort(n.tlsHost ?? n.host, n.tlsPort)}?transport=tcp`);
  return urls;
}

export interface IceServersInput {
  /** STUN nodes, nearest first. */
  readonly stun: readonly NodeInfo[];
  /** The TURN node, if any. */
  readonly turn: NodeInfo | undefined;
  /**
   * TURN REST: shared secret, the session ('' for none), the caller's token sub and the expiry
   * (unix seconds); the username is "<expiry>:<sessionId>", or "<expiry>::<sub>" without a
   * session (src/auth/turnRest.ts).
   */
  readonly secret: string;
  readonly sessionId: string;
  readonly sub: string;
  readonly expiresAt: number;
}

export function buildIceServers(input: IceServersInput): IceServer[] {
  // A node's RFC 5780 alternate address is one more STUN server (same node, other IP and port).
  const out: IceServer[] = input.stun.map((n) => ({ urls: n.alt ? [stunUrl(n), stunUrl(n.alt)] : [stunUrl(n)] }));
  if (input.turn) {
    const { username, credential } = mintTurnRestCredentials(input.secret, input.sessionId, input.expiresAt, input.sub);
    out.push({ urls: turnUrls(input.turn), username, credential });
  }
  return out;
}
