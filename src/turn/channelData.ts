/**
 * ChannelData framing (RFC 8656 §12.4, §12.5) and the channel number range we accept.
 *
 * RFC 8656 narrowed channel numbers to 0x4000-0x4FFF; RFC 5766 allowed 0x4000-0x7FFF, and clients
 * of that era still pick numbers up there (coturn's turnutils_uclient binds e.g. 0x7db2). Nothing
 * else is multiplexed on a TURN port, so the relay accepts the RFC 5766 range: first byte 0x40-0x7F.
 */
import { stunFrameLength, FRAME_INCOMPLETE } from '../stun/index.ts';

export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x7fff;
export const CHANNEL_DATA_HEADER = 4;

export function isValidChannel(n: number): boolean {
  return n >= MIN_CHANNEL && n <= MAX_CHANNEL;
}

/** Could this datagram be ChannelData? (First two bits 01; STUN's are 00.) */
export function isChannelDataFrame(buf: Buffer): boolean {
  return buf.length >= CHANNEL_DATA_HEADER && (buf[0]! & 0xc0) === 0x40;
}

/** Bytes of padding after `length` bytes of data over TCP/TLS (RFC 8656 §12.5). */
export function streamPadding(length: number): number {
  return (4 - (length & 3)) & 3;
}

/**
 * Cuts a TURN stream: like the codec's `stunFrameLength`, with ChannelData over the whole RFC 5766
 * channel range (always padded to 4 bytes over a stream).
 */
export function turnFrameLength(buf: Buffer, offset: number): number {
  const available = buf.length - offset;
  if (available < 4) return FRAME_INCOMPLETE;
  if ((buf[offset]! & 0xc0) === 0x40) {
    const frame = (CHANNEL_DATA_HEADER + buf.readUInt16BE(offset + 2) + 3) & ~3;
    return available >= frame ? frame : FRAME_INCOMPLETE;
  }
  return stunFrameLength(buf, offset);
}
