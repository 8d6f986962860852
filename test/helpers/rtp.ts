/** RTP packets for the device's media tests (src/device/*.test.ts). */

/** An RTP packet (RFC 3550 §5.1) with `payload`, sequence `seq`, timestamp `ts`, `extra` zero bytes after. */
export function rtp(seq: number, ts: number, payload: number[], extra = 0): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80; h[1] = 96; h.writeUInt16BE(seq, 2); h.writeUInt32BE(ts, 4);
  return Buffer.concat([h, Buffer.from(payload), Buffer.alloc(extra)]);
}
// VP8 (RFC 7741): descriptor X=1 with a 15-bit PictureID, then the payload header's P bit.
export const vp8Key = (seq: number, ts: number): Buffer => rtp(seq, ts, [0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00]);
export const vp8Delta = (seq: number, ts: number): Buffer => rtp(seq, ts, [0x90, 0x80, 0x80, 0x02, 0x11, 0x02, 0x00]);
/** A later packet of the same picture (S = 0). */
export const vp8More = (seq: number, ts: number): Buffer => rtp(seq, ts, [0x80, 0x80, 0x80, 0x02, 0x00]);
