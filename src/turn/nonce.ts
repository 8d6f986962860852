/**
 * Stateless nonces (docs/security.md): a nonce carries its own expiry and an HMAC
 * over that expiry and the client's IP address, so any worker of any node sharing the key can
 * check it without storing anything, and a nonce does not travel to another source address.
 *
 *   nonce = "obMatJos2" + features(4) + base64url(expiry u32 BE || HMAC-SHA256(key, expiry || ip)[0..12])
 *
 * The prefix is RFC 8489 §9.2's nonce cookie; its features say that PASSWORD-ALGORITHMS is
 * offered (bit 0 of the 24-bit set, the most significant one). RFC 5389 clients treat the whole
 * value as opaque.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const NONCE_COOKIE = 'obMatJos2';
/** base64 of the 24 feature bits 0x800000: "password algorithms". */
export const NONCE_FEATURES_PASSWORD_ALGORITHMS = 'gAAA';
const PREFIX = NONCE_COOKIE + NONCE_FEATURES_PASSWORD_ALGORITHMS;
const MAC_BYTES = 12;
const BODY_BYTES = 4 + MAC_BYTES;
const BODY_CHARS = 22; // base64url of 16 bytes, unpadded

export type NonceCheck = 'ok' | 'stale';

export class NonceIssuer {
  private readonly key: Buffer;
  private readonly lifetimeSec: number;
  private readonly body = Buffer.alloc(BODY_BYTES);

  constructor(key: Buffer, lifetimeSec: number) {
    this.key = key;
    this.lifetimeSec = lifetimeSec;
  }

  issue(clientIp: string, nowSec: number): string {
    const expiry = Math.floor(nowSec) + this.lifetimeSec;
    const body = this.body;
    body.writeUInt32BE(expiry >>> 0, 0);
    this.mac(body, clientIp).copy(body, 4, 0, MAC_BYTES);
    return PREFIX + body.toString('base64url');
  }

  /** 'stale' covers expired nonces and values we never issued (both answered with 438). */
  check(nonce: string, clientIp: string, nowSec: number): NonceCheck {
    if (nonce.length !== PREFIX.length + BODY_CHARS || !nonce.startsWith(PREFIX)) return 'stale';
    const body = Buffer.from(nonce.slice(PREFIX.length), 'base64url');
    if (body.length !== BODY_BYTES) return 'stale';
    const mac = this.mac(body, clientIp);
    if (!timingSafeEqual(mac.subarray(0, MAC_BYTES), body.subarray(4))) return 'stale';
    return body.readUInt32BE(0) >= nowSec ? 'ok' : 'stale';
  }

  private mac(body: Buffer, clientIp: string): Buffer {
    return createHmac('sha256', this.key).update(body.subarray(0, 4)).update(clientIp).digest();
  }
}
