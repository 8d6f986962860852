import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codesOn, isErrorCode } from '../errors.ts';
import { SDK_ERROR_CODES, SdkError, asSdkError, fromRemote } from './errors.ts';
import { DEVICE_ERROR_CODES } from './index.ts';

test('codes from the service and the device map to SDK codes, keeping the original', () => {
  assert.equal(fromRemote('DEVICE_OFFLINE', 'gone', 'service').code, 'DEVICE_OFFLINE');
  const auth = fromRemote('TOKEN_EXPIRED', 'old', 'service');
  assert.equal(auth.code, 'AUTH_FAILED');
  assert.equal(auth.serverCode, 'TOKEN_EXPIRED');
  assert.equal(fromRemote('SESSION_UNKNOWN', 'restarted', 'device').code, 'PEER_GONE');
  assert.equal(fromRemote('DEVICE_BUSY', 'full', 'device').code, 'DEVICE_ERROR');
  const busy = fromRemote('DEVICE_BUSY', 'full', 'service');
  assert.deepEqual([busy.code, busy.serverCode], ['DEVICE_ERROR', 'DEVICE_BUSY'], 'the service\'s cap reads as the device\'s own');
  const other = fromRemote('NO_TURN_NODE', 'none', 'service');
  assert.equal(other.code, 'SESSION_FAILED');
  assert.deepEqual(other.toJSON(), { code: 'SESSION_FAILED', message: 'none [NO_TURN_NODE]', serverCode: 'NO_TURN_NODE' });
});

test('anything thrown becomes an SdkError', () => {
  const e = new SdkError('TIMEOUT', 't');
  assert.equal(asSdkError(e), e);
  assert.equal(asSdkError(new Error('boom')).code, 'SESSION_FAILED');
  assert.equal(asSdkError('x', 'ICE_FAILED').code, 'ICE_FAILED');
});

test('the SDK\'s codes and its device\'s are the catalogue\'s (src/errors.ts)', () => {
  assert.deepEqual([...SDK_ERROR_CODES].sort(), codesOn('sdk').sort());
  assert.deepEqual([...DEVICE_ERROR_CODES].sort(), codesOn('device').sort());
  for (const code of [...SDK_ERROR_CODES, ...DEVICE_ERROR_CODES]) assert.ok(isErrorCode(code), code);
});
