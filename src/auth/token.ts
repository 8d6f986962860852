/**
 * Client tokens (JWT via jose). An app token names the devices it may reach; a device token is
 * the device's own identity. HS256 with --jwt-secret, or ES256 verified with --jwt-public-key
 * (tokens then come from the operator's own issuer holding the private key). During a rotation
 * (docs/operations.md "Secret rotation") HS256 tokens signed with --jwt-secret-previous still
 * verify; only --jwt-secret signs.
 */
import { SignJWT, jwtVerify, importSPKI, errors as joseErrors, type CryptoKey, type KeyObject } from 'jose';
import { tokenExpired, tokenInvalid } from '../errors.ts';

export type ClientRole = 'app' | 'device';

/**
 * Every role a token can carry: the clients', and `operator` for the node's own management API
 * (`GET /v1/usage`, docs/operations.md "Usage"). An operator token is no client token: signaling,
 * the broker and the session routes refuse it (their {@link TokenVerifier.verify} answers
 * TOKEN_INVALID), so it opens no session and reaches no topic.
 */
export type TokenRole = ClientRole | 'operator';

/** The claims of an operator token. */
export interface OperatorClaims {
  readonly sub: string;
  readonly role: 'operator';
  readonly exp: number;
}

export interface ClientClaims {
  /** The app or device id; also the MQTT username. */
  readonly sub: string;
  readonly role: ClientRole;
  /** For apps: device ids the app may open sessions to; `['*']` for any. Devices: empty. */
  readonly devices: readonly string[];
  /** Expiry, unix seconds. */
  readonly exp: number;
}

/** Ids are safe in MQTT topics and Redis keys: no `/`, `+`, `#`, spaces or control characters. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

export interface TokenVerifier {
  /** A client token (app or device); TOKEN_INVALID for an operator token. */
  verify(token: string): Promise<ClientClaims>;
  /** A token of any role, operator tokens too. */
  verifyAny(token: string): Promise<ClientClaims | OperatorClaims>;
}

export interface TokenSigner {
  sign(claims: { sub: string; role: TokenRole; devices?: readonly string[]; ttlSec?: number }): Promise<string>;
}

const ISSUER = 'p2pd';

export function allowsDevice(claims: ClientClaims, deviceId: string): boolean {
  return claims.role === 'app' && (claims.devices.includes('*') || claims.devices.includes(deviceId));
}

export function createHs256Signer(secret: string): TokenSigner {
  const key = new TextEncoder().encode(secret);
  return {
    async sign({ sub, role, devices = [], ttlSec = 3600 }) {
      if (!CLIENT_ID_PATTERN.test(sub)) throw tokenInvalid(`subject ${JSON.stringify(sub)} is not a valid id`);
      return new SignJWT({ role, devices: [...devices] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
        .sign(key);
    },
  };
}

export interface VerifierOptions {
  readonly secret: string;
  /** The HS256 secret `secret` replaced: its tokens still verify (a bad signature under `secret` is tried with it). */
  readonly previousSecret?: string | undefined;
  readonly publicKeyPem?: string | undefined;
}

/** Verifies HS256 tokens with `secret` (or `previousSecret`), or ES256 tokens with the PEM public key when given. */
export async function createVerifier(opts: VerifierOptions): Promise<TokenVerifier> {
  let key: Uint8Array | CryptoKey | KeyObject;
  let previous: Uint8Array | undefined;
  let alg: string;
  if (opts.publicKeyPem !== undefined) {
    key = await importSPKI(opts.publicKeyPem, 'ES256');
    alg = 'ES256';
  } else {
    key = new TextEncoder().encode(opts.secret);
    if (opts.previousSecret !== undefined && opts.previousSecret !== '') previous = new TextEncoder().encode(opts.previousSecret);
    alg = 'HS256';
  }
  const check = async (token: string) => {
    try {
      return (await jwtVerify(token, key, { algorithms: [alg] })).payload;
    } catch (err) {
      if (previous === undefined || !(err instanceof joseErrors.JWSSignatureVerificationFailed)) throw err;
      return (await jwtVerify(token, previous, { algorithms: [alg] })).payload;
    }
  };
  async function verifyAny(token: string): Promise<ClientClaims | OperatorClaims> {
    let payload;
    try {
      payload = await check(token);
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw tokenExpired();
      throw tokenInvalid(err instanceof Error ? err.message : 'unreadable');
    }
    const { sub, role, devices, exp } = payload as { sub?: unknown; role?: unknown; devices?: unknown; exp?: unknown };
    if (typeof sub !== 'string' || !CLIENT_ID_PATTERN.test(sub)) throw tokenInvalid('bad subject');
    if (role === 'operator') {
      if (typeof exp !== 'number') throw tokenInvalid('no expiry');
      return { sub, role, exp };
    }
    if (role !== 'app' && role !== 'device') throw tokenInvalid('role must be app, device or operator');
    if (devices !== undefined && !(Array.isArray(devices) && devices.every((d) => typeof d === 'string'))) throw tokenInvalid('devices must be a list of ids');
    if (typeof exp !== 'number') throw tokenInvalid('no expiry');
    return { sub, role, devices: (devices as string[] | undefined) ?? [], exp };
  }
  return {
    verifyAny,
    async verify(token: string): Promise<ClientClaims> {
      const claims = await verifyAny(token);
      if (claims.role === 'operator') throw tokenInvalid('an operator token is not a client token');
      return claims;
    },
  };
}
