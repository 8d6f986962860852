/**
 * Where a packet came in, so that the answer leaves on the same path: the front door
 * (server/stunServer.ts) hands an Ingress to the Binding and TURN handlers with every message.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';

/**
 * Local endpoints, indexed by bits: bit 1 = alternate IP, bit 0 = alternate port. Index 0 is the
 * primary address; 1..3 exist only with --alt-ip (RFC 5780).
 */
export type EndpointIndex = 0 | 1 | 2 | 3;

/** The socket a packet came in on and the local endpoint it was sent to. */
export interface Ingress {
  readonly endpoint: EndpointIndex;
  /** Index of the UDP socket (part of a UDP client's 5-tuple key); -1 for TCP/TLS. */
  readonly slot: number;
  /** Set for UDP. */
  readonly udp: dgram.Socket | undefined;
  /** Set for TCP/TLS connections. */
  readonly stream: net.Socket | undefined;
}
