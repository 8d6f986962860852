import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import { SdkError } from './errors.ts';
import type { SignalMessage } from './signaling.ts';
import { RECREATE_MIN_INTERVAL_MS, SessionRecreator, readSignalError } from './signalErrors.ts';

const error = (from: string, code: string, message?: string): SignalMessage =>
  ({ type: 'error', sessionId: 's', from, to: 'app', msgId: 'e', payload: { code, ...(message === undefined ? {} : { message }) }, timestamp: 0 }) as SignalMessage;

test('the service\'s SESSION_NOT_FOUND once connected is a lost session; during setup, or from the device, an error', () => {
  assert.deepEqual(readSignalError(error('server', 'SESSION_NOT_FOUND'), 'cam-1', false), { kind: 'session-lost' });
  const setup = readSignalError(error('server', 'SESSION_NOT_FOUND', 'no such session'), 'cam-1', true);
  assert.equal(setup.kind, 'error');
  const device = readSignalError(error('cam-1', 'NEGOTIATION_FAILED', 'no answer'), 'cam-1', false);
  assert.ok(device.kind === 'error' && device.error.code === 'DEVICE_ERROR' && device.error.serverCode === 'NEGOTIATION_FAILED');
  const gone = readSignalError(error('cam-1', 'SESSION_UNKNOWN', 'restarted'), 'cam-1', false);
  assert.ok(gone.kind === 'error' && gone.error.code === 'PEER_GONE');
  const offline = readSignalError(error('server', 'DEVICE_OFFLINE'), 'cam-1', false);
  assert.ok(offline.kind === 'error' && offline.error.code === 'DEVICE_OFFLINE' && offline.error.message === 'DEVICE_OFFLINE');
});

test('a lost session is created again at most once per RECREATE_MIN_INTERVAL_MS; SESSION_EXISTS is no failure', async () => {
  const clock = fakeClock();
  const log: string[] = [];
  let refuse: unknown;
  const r = new SessionRecreator({
    clock,
    create: async () => { log.push('create'); if (refuse) throw refuse; },
    onCreated: () => log.push('keepalive'),
    warn: (e) => log.push(`warn ${e.code}`),
  });
  await r.lost();
  await r.lost();
  assert.deepEqual(log, ['create', 'keepalive']);
  await clock.advance(RECREATE_MIN_INTERVAL_MS);
  refuse = new SdkError('SESSION_FAILED', 'exists', { serverCode: 'SESSION_EXISTS' });
  await r.lost();
  assert.deepEqual(log, ['create', 'keepalive', 'create']);
  await clock.advance(RECREATE_MIN_INTERVAL_MS);
  refuse = new Error('connection refused');
  await r.lost();
  assert.deepEqual(log.slice(3), ['create', 'warn SESSION_FAILED']);
});
