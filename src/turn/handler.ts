/**
 * What the STUN front door (server/stunServer.ts) asks of the TURN role. TurnServer implements it;
 * the node hands it to the front door with StunServer.setTurnHandler.
 */
import type net from 'node:net';
import type { StunMessage, TransportAddress } from '../stun/index.ts';
import type { Ingress } from '../transport/ingress.ts';

/** Without one, the front door answers TURN methods with 400 and drops ChannelData. */
export interface TurnHandler {
  /** Handles a non-Binding STUN message. */
  onStun(msg: StunMessage, source: TransportAddress, ingress: Ingress): void;
  /** Handles a ChannelData frame (`buf` holds exactly one frame). */
  onChannelData(buf: Buffer, source: TransportAddress, ingress: Ingress): void;
  /** A TCP/TLS client connection closed. */
  onStreamClosed(socket: net.Socket): void;
  /** Whether a TCP/TLS connection holds an allocation (or one is being made): then no idle timeout. */
  holdsAllocation(socket: net.Socket): boolean;
  /**
   * --secure-stun: checks a Binding request's long-term credentials. Returns the key to sign the
   * answer with, or undefined after answering the refusal itself (401 with REALM and NONCE).
   */
  authorizeBinding(msg: StunMessage, source: TransportAddress, ingress: Ingress): { key: Buffer; sha256: boolean } | undefined;
}
