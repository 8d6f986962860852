import { HEADER_LENGTH } from './constants.ts';

/** {@link stunFrameLength}: the frame is not complete yet. */
export const FRAME_INCOMPLETE = -1;
/** {@link stunFrameLength}: neither STUN nor ChannelData; the stream cannot be resynchronised. */
export const FRAME_INVALID = -2;

/**
 * RFC 7983 / RFC 8656 §12: a ChannelData message starts with a channel number 0x4000-0x4FFF,
 * so its first byte is 64-79; its header is 4 bytes.
 */
export function isChannelData(buf: Buffer): boolean {
  return buf.length >= 4 && (buf[0]! & 0xf0) === 0x40;
}

/**
 * Cuts a TCP/TLS stream into frames. Returns the length of the frame starting at `offset` — a
 * STUN message (20 + length) or a ChannelData message (4 + length, padded to a multiple of 4
 * over TCP: RFC 8656 §12.5) — once all its bytes are in `buf`; {@link FRAME_INCOMPLETE} until
 * then; {@link FRAME_INVALID} when the bytes are neither STUN (first two bits 00, length a
 * multiple of 4) nor ChannelData (first byte 0x40-0x4F): the caller should close the stream.
 * Never throws.
 */
export function stunFrameLength(buf: Buffer, offset: number): number {
  const available = buf.length - offset;
  if (available < 4) return FRAME_INCOMPLETE;
  const first = buf[offset]!;
  const length = buf.readUInt16BE(offset + 2);
  let frame: number;
  if ((first & 0xc0) === 0x00) {
    if ((length & 3) !== 0) return FRAME_INVALID;
    frame = HEADER_LENGTH + length;
  } else if ((first & 0xf0) === 0x40) {
    frame = (4 + length + 3) & ~3;
  } else {
    return FRAME_INVALID;
  }
  return available >= frame ? frame : FRAME_INCOMPLETE;
}
