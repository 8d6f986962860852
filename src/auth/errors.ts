import { P2pdError } from '../errors.ts';

export type AuthErrorCode = 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'FORBIDDEN';

export class AuthError extends P2pdError {
  constructor(code: AuthErrorCode, message: string) {
    super(code, message, code === 'FORBIDDEN' ? 403 : 401);
  }
}

export const tokenMissing = (): AuthError => new AuthError('TOKEN_MISSING', 'no token: send Authorization: Bearer <token>');
export const tokenInvalid = (why: string): AuthError => new AuthError('TOKEN_INVALID', `invalid token: ${why}`);
export const tokenExpired = (): AuthError => new AuthError('TOKEN_EXPIRED', 'token expired');
export const forbidden = (why: string): AuthError => new AuthError('FORBIDDEN', why);
