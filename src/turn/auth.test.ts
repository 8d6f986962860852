import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Attr, MessageClass, MessageWriter, Method, PasswordAlgorithm, computeUserhash, decodeMessage, encodePasswordAlgorithm,
  longTermKey, messageType, newTransactionId,
} from '../stun/index.ts';
import { mintTurnRestCredentials } from '../auth/turnRest.ts';
import { OFFERED_PASSWORD_ALGORITHMS, TurnAuthenticator, nonceKeyFrom, type Principal } from './auth.ts';

const REALM = 'example.org';
const auth = new TurnAuthenticator({ realm: REALM, authSecret: 's3cret', users: [{ name: 'alice', password: 'pw' }], nonceLifetimeSec: 600, nonceKey: nonceKeyFrom('s3cret') });
const NOW = 1_700_000_000;
const IP = '192.0.2.7';

function request(opts: { user?: string; userhash?: Buffer; password?: string; nonce?: string; realm?: string; sha256?: boolean; algorithms?: Buffer; integrity?: boolean }): ReturnType<typeof decodeMessage> {
  const w = new MessageWriter().reset(messageType(Method.Allocate, MessageClass.Request), newTransactionId());
  if (opts.user !== undefined) w.addString(Attr.Username, opts.user);
  if (opts.userhash) w.addAttr(Attr.Userhash, opts.userhash);
  w.addString(Attr.Realm, opts.realm ?? REALM);
  w.addString(Attr.Nonce, opts.nonce ?? auth.nonces.issue(IP, NOW));
  if (opts.sha256) {
    w.addAttr(Attr.PasswordAlgorithms, opts.algorithms ?? OFFERED_PASSWORD_ALGORITHMS);
    w.addAttr(Attr.PasswordAlgorithm, encodePasswordAlgorithm({ algorithm: PasswordAlgorithm.SHA256, params: Buffer.alloc(0) }));
  }
  if (opts.integrity !== false) {
    const name = opts.user ?? 'alice';
    const key = longTermKey(name, REALM, opts.password ?? 'pw', opts.sha256 ? 'sha256' : 'md5');
    if (opts.sha256) w.addMessageIntegritySha256(key);
    else w.addMessageIntegrity(key);
  }
  return decodeMessage(w.toBuffer());
}

const refusal = (r: ReturnType<TurnAuthenticator['authenticate']>): string => ('code' in r ? `${r.code} ${r.reason}` : 'ok');

test('no MESSAGE-INTEGRITY is a challenge; missing USERNAME/REALM/NONCE is 400', () => {
  assert.equal(refusal(auth.authenticate(request({ user: 'alice', integrity: false }), IP, NOW)), '401 challenge');
  const w = new MessageWriter().reset(messageType(Method.Allocate, MessageClass.Request), newTransactionId());
  w.addMessageIntegrity(Buffer.alloc(16));
  assert.equal(refusal(auth.authenticate(decodeMessage(w.toBuffer()), IP, NOW)), '400 missing_attributes');
});

test('static users: the right password passes, a wrong one and an unknown user get 401', () => {
  const ok = auth.authenticate(request({ user: 'alice' }), IP, NOW) as Principal;
  assert.equal(ok.username, 'alice');
  assert.equal(ok.sessionId, undefined);
  assert.equal(refusal(auth.authenticate(request({ user: 'alice', password: 'bad' }), IP, NOW)), '401 bad_integrity');
  assert.equal(refusal(auth.authenticate(request({ user: 'mallory' }), IP, NOW)), '401 unknown_user');
});

test('nonces: expired, foreign or from another address get 438', () => {
  assert.equal(refusal(auth.authenticate(request({ user: 'alice' }), IP, NOW + 601)), '438 stale_nonce');
  assert.equal(refusal(auth.authenticate(request({ user: 'alice' }), '192.0.2.8', NOW)), '438 stale_nonce');
  assert.equal(refusal(auth.authenticate(request({ user: 'alice', nonce: 'abc' }), IP, NOW)), '438 stale_nonce');
});

test('TURN REST credentials carry their session id; expired ones get 401', () => {
  const c = mintTurnRestCredentials('s3cret', 'sess-9', NOW + 60);
  const ok = auth.authenticate(request({ user: c.username, password: c.credential }), IP, NOW) as Principal;
  assert.equal(ok.sessionId, 'sess-9');
  assert.equal(refusal(auth.authenticate(request({ user: c.username, password: c.credential }), IP, NOW + 61)), '401 rest_expired');
  const forged = mintTurnRestCredentials('other', 'sess-9', NOW + 60);
  assert.equal(refusal(auth.authenticate(request({ user: forged.username, password: forged.credential }), IP, NOW)), '401 bad_integrity');
});

test('SHA-256 keys with MESSAGE-INTEGRITY-SHA256; a tampered PASSWORD-ALGORITHMS list is 400 (no downgrade)', () => {
  const ok = auth.authenticate(request({ user: 'alice', sha256: true }), IP, NOW) as Principal;
  assert.equal(ok.sha256Integrity, true);
  assert.equal(ok.key.length, 32);
  const onlyMd5 = Buffer.from([0, 1, 0, 0]);
  assert.equal(refusal(auth.authenticate(request({ user: 'alice', sha256: true, algorithms: onlyMd5 }), IP, NOW)), '400 bad_password_algorithm');
});

test('USERHASH stands for a static user', () => {
  const w = new MessageWriter().reset(messageType(Method.Allocate, MessageClass.Request), newTransactionId());
  w.addAttr(Attr.Userhash, computeUserhash('alice', REALM));
  w.addString(Attr.Realm, REALM).addString(Attr.Nonce, auth.nonces.issue(IP, NOW));
  w.addMessageIntegrity(longTermKey('alice', REALM, 'pw'));
  const ok = auth.authenticate(decodeMessage(w.toBuffer()), IP, NOW) as Principal;
  assert.equal(ok.username, 'alice');
});

test("an allocation's known principal is reused, and a different username is not", () => {
  const known = auth.authenticate(request({ user: 'alice' }), IP, NOW) as Principal;
  const again = auth.authenticate(request({ user: 'alice' }), IP, NOW, known) as Principal;
  assert.equal(again.key, known.key);
});

test("REST expiry is checked again on a request of an existing allocation (the known principal)", () => {
  const c = mintTurnRestCredentials('s3cret', 'sess-9', NOW + 60, 'app-1');
  const known = auth.authenticate(request({ user: c.username, password: c.credential }), IP, NOW) as Principal;
  assert.deepEqual([known.sessionId, known.sub, known.expiresAtSec], ['sess-9', undefined, NOW + 60], 'a session\'s principal comes from the store');
  const later = request({ user: c.username, password: c.credential, nonce: auth.nonces.issue(IP, NOW + 61) });
  assert.equal(refusal(auth.authenticate(later, IP, NOW + 61, known)), '401 rest_expired');
  assert.equal(refusal(auth.authenticate(later, IP, NOW + 30, known)), 'ok');
});

test('session and principal are separate fields: "<expiry>::<sub>" has no session', () => {
  const c = mintTurnRestCredentials('s3cret', '', NOW + 60, 'sess-9');
  const p = auth.authenticate(request({ user: c.username, password: c.credential }), IP, NOW) as Principal;
  assert.deepEqual([p.sessionId, p.sub], [undefined, 'sess-9']);
});

test('during a rotation REST credentials of the previous secret still verify, for MD5 and SHA-256 keys; without it they get 401', () => {
  const nonceKey = nonceKeyFrom('s3cret');
  const rotated = new TurnAuthenticator({ realm: REALM, authSecret: 'n3w', previousAuthSecret: 's3cret', users: [], nonceLifetimeSec: 600, nonceKey });
  const onlyNew = new TurnAuthenticator({ realm: REALM, authSecret: 'n3w', users: [], nonceLifetimeSec: 600, nonceKey });
  const old = mintTurnRestCredentials('s3cret', 'sess-1', NOW + 60);
  const fresh = mintTurnRestCredentials('n3w', 'sess-2', NOW + 60);
  for (const sha256 of [false, true]) {
    const oldReq = request({ user: old.username, password: old.credential, sha256 });
    const ok = rotated.authenticate(oldReq, IP, NOW) as Principal;
    assert.equal(ok.sessionId, 'sess-1');
    assert.deepEqual(ok.key, longTermKey(old.username, REALM, old.credential, sha256 ? 'sha256' : 'md5'), 'the allocation keeps the key that verified');
    assert.equal(refusal(onlyNew.authenticate(oldReq, IP, NOW)), '401 bad_integrity');
    const freshReq = request({ user: fresh.username, password: fresh.credential, sha256 });
    assert.equal(refusal(rotated.authenticate(freshReq, IP, NOW)), 'ok');
    assert.equal(refusal(onlyNew.authenticate(freshReq, IP, NOW)), 'ok');
    assert.equal(refusal(rotated.authenticate(request({ user: old.username, password: 'forged', sha256 }), IP, NOW)), '401 bad_integrity');
  }
  // The previous secret is for REST credentials only: it is no password of a static user.
  const withUser = new TurnAuthenticator({ realm: REALM, authSecret: 'n3w', previousAuthSecret: 'pw', users: [{ name: 'alice', password: 'right' }], nonceLifetimeSec: 600, nonceKey });
  assert.equal(refusal(withUser.authenticate(request({ user: 'alice', password: 'pw' }), IP, NOW)), '401 bad_integrity');
});
