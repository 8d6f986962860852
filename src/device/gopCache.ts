/**
 * The RTP packets of the current group of pictures: from the last keyframe's first packet to
 * now. One encoder serves every viewer and cannot be asked for a keyframe, so a viewer that joins
 * mid-group gets these first, decodes from the keyframe on and shows video at once instead of
 * waiting for the next keyframe (up to `keyframeSec`). Bounded: a group larger than MAX_BYTES
 * is dropped until the next keyframe (a viewer then waits for it, as without the cache).
 */
import type { VideoCodec } from '../sdk/rtc.ts';

export const MAX_BYTES = 1 << 20;

/** Offset of the RTP payload (RFC 3550 §5.1: CSRCs, header extension), or -1 when malformed. */
export function rtpPayloadOffset(pkt: Uint8Array): number {
  if (pkt.length < 12 || (pkt[0]! >> 6) !== 2) return -1;
  let off = 12 + 4 * (pkt[0]! & 0x0f);
  if (pkt[0]! & 0x10) {
    if (pkt.length < off + 4) return -1;
    off += 4 + 4 * ((pkt[off + 2]! << 8) | pkt[off + 3]!);
  }
  return off < pkt.length ? off : -1;
}

/** Does this VP8 payload start a keyframe? (RFC 7741 §4.2 descriptor, §4.3 payload header.) */
export function vp8KeyframeStart(p: Uint8Array): boolean {
  if (p.length < 1) return false;
  const first = p[0]!;
  if (!(first & 0x10) || (first & 0x07) !== 0) return false; // S = 1 and partition 0
  let i = 1;
  if (first & 0x80) {
    if (p.length <= i) return false;
    const x = p[i++]!;
    if (x & 0x80) i += p.length > i && (p[i]! & 0x80) ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) i += 1; // TL0PICIDX
    if (x & 0x30) i += 1; // TID / KEYIDX
  }
  return p.length > i && (p[i]! & 0x01) === 0; // P = 0: a key frame
}

/** Does this H.264 payload start an IDR picture or its parameter sets? (RFC 6184 §5.2–5.8.) */
export function h264KeyframeStart(p: Uint8Array): boolean {
  if (p.length < 2) return false;
  const type = p[0]! & 0x1f;
  if (type === 5 || type === 7) return true;
  if (type === 24) return p.length > 3 && [5, 7].includes(p[3]! & 0x1f); // STAP-A: its first NAL unit
  if (type === 28) return (p[1]! & 0x80) !== 0 && (p[1]! & 0x1f) === 5; // FU-A start of an IDR
  return false;
}

export class GopCache {
  private packets: Uint8Array[] = [];
  private bytes = 0;
  /** Set when the group outgrew MAX_BYTES: nothing is kept until the next keyframe. */
  private overflowed = true;
  private readonly codec: VideoCodec;

  constructor(codec: VideoCodec) {
    this.codec = codec;
  }

  push(pkt: Uint8Array): void {
    const off = rtpPayloadOffset(pkt);
    if (off < 0) return;
    const payload = pkt.subarray(off);
    if (this.codec === 'VP8' ? vp8KeyframeStart(payload) : h264KeyframeStart(payload)) {
      // A keyframe's later packets (and an H.264 IDR after its SPS/PPS) extend the group.
      if (!this.startsGroup(pkt)) this.reset();
    }
    if (this.overflowed) return;
    if (this.bytes + pkt.length > MAX_BYTES) {
      this.packets = [];
      this.bytes = 0;
      this.overflowed = true;
      return;
    }
    this.packets.push(pkt);
    this.bytes += pkt.length;
  }

  /** The group so far, oldest first (empty before the first keyframe or after an overflow). */
  group(): readonly Uint8Array[] {
    return this.packets;
  }

  get size(): number {
    return this.bytes;
  }

  private reset(): void {
    this.packets = [];
    this.bytes = 0;
    this.overflowed = false;
  }

  /** True when pkt belongs to the picture the group started with (same RTP timestamp). */
  private startsGroup(pkt: Uint8Array): boolean {
    const head = this.packets[0];
    return head !== undefined && !this.overflowed && timestampOf(head) === timestampOf(pkt);
  }
}

const timestampOf = (pkt: Uint8Array): number => ((pkt[4]! << 24) >>> 0) + (pkt[5]! << 16) + (pkt[6]! << 8) + pkt[7]!;
