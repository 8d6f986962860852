/**
 * A channel binding (RFC 8656 §12): a channel number standing for one peer transport address of
 * one allocation, so data travels with a 4-byte ChannelData header instead of a Send or Data
 * indication. Lasts 10 minutes unless refreshed by another ChannelBind.
 */
import type { RelayPort } from './relayPorts.ts';

export interface ChannelBinding {
  readonly number: number;
  readonly family: 4 | 6;
  readonly address: string;
  /** The peer's IPv4 address as a number (-1 for IPv6). */
  readonly ip4: number;
  readonly port: number;
  /** The relay socket of the peer's family: the socket data to this peer leaves from. */
  readonly relay: RelayPort;
  expiresAtSec: number;
  /**
   * The ChannelData header for this channel, reused for every datagram to the client while the
   * client socket's send queue is empty (then dgram has sent it before `send` returns).
   */
  readonly header: Buffer;
  /**
   * The peer is an own address of the server (peerPolicy.ts): each frame checks that its port is
   * still a live relay port. False for every other peer, so they pay one boolean.
   */
  guarded: boolean;
}

export function createChannelBinding(number: number, family: 4 | 6, address: string, ip4: number, port: number, relay: RelayPort, expiresAtSec: number): ChannelBinding {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(number, 0);
  return { number, family, address, ip4, port, relay, expiresAtSec, header, guarded: false };
}
