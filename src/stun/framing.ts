import { HEADER_LENGTH } from './constants.ts';
import { StunDecodeError } from './errors.ts';

/**
 * Cuts a TCP/TLS stream into frames. Returns the length of the frame starting at `offset` — a
 * STUN message (20 + length) or a ChannelData message (4 + length, padded to a multiple of 4
 * over TCP: RFC 8656 §12.5) — once all its bytes are in `buf`, and -1 until then. Throws
 * `STUN_NOT_STUN` when the first two bits are neither 00 (STUN) nor 01 (ChannelData) and
 * `STUN_BAD_LENGTH` when a STUN length is not a multiple of 4: such a stream cannot be
 * resynchronised and should be closed.
 */
export function stunFrameLength(buf: Buffer, offset: number): number {
  const available = buf.length - offset;
  if (available < 4) return -1;
  const top = buf[offset]! & 0xc0;
  const length = buf.readUInt16BE(offset + 2);
  let frame: number;
  if (top === 0x00) {
    if ((length & 3) !== 0) throw new StunDecodeError('STUN_BAD_LENGTH', `length ${length} is not a multiple of 4`);
    frame = HEADER_LENGTH + length;
  } else if (top === 0x40) {
    frame = (4 + length + 3) & ~3;
  } else {
    throw new StunDecodeError('STUN_NOT_STUN', 'neither STUN nor ChannelData');
  }
  return available >= frame ? frame : -1;
}
