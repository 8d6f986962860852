import { test } from 'node:test';
import assert from 'node:assert/strict';
import { P2pdError } from '../errors.ts';
import { bearerToken, parseBearer } from './auth.ts';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof P2pdError ? err.code : 'other';
  }
  return undefined;
};

test('the Bearer scheme is case-insensitive (RFC 7235 §2.1) and takes one token (RFC 6750 §2.1)', () => {
  for (const h of ['Bearer abc.def', 'bearer abc.def', 'BEARER  abc.def ', 'Bearer\tabc.def']) assert.equal(parseBearer(h), 'abc.def', h);
  for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic YWxhZGRpbg==', 'Bearer a b', 'Bearerabc']) assert.equal(parseBearer(h), undefined, String(h));
});

test('bearerToken: TOKEN_MISSING without an Authorization header, TOKEN_INVALID for another scheme', () => {
  assert.equal(bearerToken({ authorization: 'bearer t0k' }), 't0k');
  assert.equal(code(() => bearerToken({})), 'TOKEN_MISSING');
  assert.equal(code(() => bearerToken({ authorization: '  ' })), 'TOKEN_MISSING');
  assert.equal(code(() => bearerToken({ authorization: 'Basic YWxhZGRpbg==' })), 'TOKEN_INVALID');
});
