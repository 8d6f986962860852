/**
 * Reads the claims of a client token without verifying it: the SDK needs its own id (`sub`, the
 * MQTT username) and role; the service verifies the signature. Browser-safe (atob).
 */
import { SdkError } from './errors.ts';

export interface TokenClaims {
  readonly sub: string;
  readonly role: 'app' | 'device';
  readonly devices: readonly string[];
  /** Expiry, unix seconds. */
  readonly exp: number | undefined;
}

function base64UrlDecode(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

export function readTokenClaims(token: string): TokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) throw new SdkError('AUTH_FAILED', 'the token is not a JWT (three dot-separated parts)');
  let payload: unknown;
  try {
    payload = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new SdkError('AUTH_FAILED', 'the token\'s payload is not readable JSON');
  }
  const p = payload as { sub?: unknown; role?: unknown; devices?: unknown; exp?: unknown };
  if (typeof p.sub !== 'string' || p.sub === '') throw new SdkError('AUTH_FAILED', 'the token has no subject (sub)');
  if (p.role !== 'app' && p.role !== 'device') throw new SdkError('AUTH_FAILED', 'the token\'s role is neither app nor device');
  const devices = Array.isArray(p.devices) ? p.devices.filter((d): d is string => typeof d === 'string') : [];
  return { sub: p.sub, role: p.role, devices, exp: typeof p.exp === 'number' ? p.exp : undefined };
}
