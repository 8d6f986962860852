import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_MESSAGE_BYTES, parseMessage, serverError } from './message.ts';

const base = { sessionId: '5c7a3f1e-8a1b-4c1d-9e2f-0123456789ab', from: 'app_1', to: 'device_1', msgId: 'm1', timestamp: 1750929836097 };
const code = (raw: unknown): string | undefined => {
  const r = parseMessage(typeof raw === 'string' ? raw : JSON.stringify(raw));
  return r.ok ? undefined : r.error.code;
};

test('accepts every message type of docs/signaling.md', () => {
  const ok = [
    { ...base, type: 'offer', payload: { type: 'offer', sdp: 'v=0\r\n' } },
    { ...base, type: 'answer', payload: { sdp: 'v=0\r\n' } },
    { ...base, type: 'candidate', payload: { candidate: 'candidate:1 1 UDP 1 192.0.2.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 } },
    { ...base, type: 'candidate', payload: { candidate: '', sdpMid: null, sdpMLineIndex: null } },
    { ...base, type: 'bye' },
    { ...base, type: 'keepalive', payload: { state: 'connected', path: 'relay', rttMs: 23, setupMs: 640, natType: 'symmetric' } },
    { ...base, type: 'error', sessionId: undefined, payload: { code: 'DEVICE_BUSY', message: 'busy' } },
    { from: 'app_1', type: 'session', timestamp: 1, payload: { deviceId: 'device_1' } },
  ];
  for (const m of ok) assert.equal(code(m), undefined, JSON.stringify(m));
});

test('keeps unknown extra fields and fills defaults', () => {
  const r = parseMessage(JSON.stringify({ ...base, type: 'bye', extra: 1 }));
  assert.ok(r.ok);
  assert.deepEqual(r.message.payload, {});
  assert.equal((r.message as unknown as { extra: number }).extra, 1);
});

test('refuses with a stable code: BAD_JSON, UNKNOWN_TYPE, BAD_MESSAGE, MESSAGE_TOO_LARGE', () => {
  assert.equal(code('{"type":'), 'BAD_JSON');
  assert.equal(code(''), 'BAD_JSON');
  assert.equal(code('[1,2]'), 'BAD_MESSAGE');
  assert.equal(code('null'), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'hello' }), 'UNKNOWN_TYPE');
  assert.equal(code({ ...base, type: 7 }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', payload: {} }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', payload: { sdp: '' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer' }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', sessionId: undefined, payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', sessionId: 'a/b', payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', from: 'app/+', payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', to: undefined, payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', timestamp: '1', payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', timestamp: -5, payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', msgId: '', payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', msgId: 'x'.repeat(129), payload: { sdp: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'candidate', payload: { candidate: 1 } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'candidate', payload: { candidate: '', sdpMLineIndex: -1 } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'keepalive', payload: { state: 'happy' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'keepalive', payload: { path: 'carrier pigeon' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'keepalive', payload: { rttMs: -1 } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'error', payload: { code: 'lower', message: 'x' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'session', payload: { deviceId: 'a b' } }), 'BAD_MESSAGE');
  assert.equal(code({ ...base, type: 'offer', payload: { sdp: 'a'.repeat(MAX_MESSAGE_BYTES) } }), 'MESSAGE_TOO_LARGE');
  assert.equal(code(`{"type":"offer","sdp":"${'a'.repeat(MAX_MESSAGE_BYTES)}`), 'MESSAGE_TOO_LARGE');
  const huge = parseMessage(`{"type":"offer","from":"app_1","msgId":"h","payload":{"sdp":"${'a'.repeat(8 * MAX_MESSAGE_BYTES)}"}}`);
  assert.ok(!huge.ok && huge.error.code === 'MESSAGE_TOO_LARGE' && huge.hints.from === 'app_1' && huge.hints.msgId === 'h');
});

test('a refusal keeps what it can to address the answer, even from broken JSON', () => {
  const big = parseMessage(JSON.stringify({ ...base, type: 'offer', payload: { sdp: 'a'.repeat(MAX_MESSAGE_BYTES) } }));
  assert.ok(!big.ok);
  assert.deepEqual(big.hints, { type: 'offer', sessionId: base.sessionId, from: 'app_1', msgId: 'm1' });
  const broken = parseMessage('{"type":"offer","from":"app_9","msgId":"x1", "payload": {');
  assert.ok(!broken.ok);
  assert.equal(broken.error.code, 'BAD_JSON');
  assert.equal(broken.hints.from, 'app_9');
  assert.equal(broken.hints.msgId, 'x1');
  const bad = parseMessage(JSON.stringify({ ...base, from: 'not an id!', type: 'hello' }));
  assert.ok(!bad.ok);
  assert.equal(bad.hints.from, undefined, 'an invalid id is never used as an address');
});

test('never throws, whatever the bytes', () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.uint8Array({ maxLength: 512 })), (input) => {
    const r = parseMessage(typeof input === 'string' ? input : Buffer.from(input));
    assert.equal(typeof r.ok, 'boolean');
  }), { numRuns: 2000 });
});

test('any object of the right shape is accepted and read back unchanged', () => {
  const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
  fc.assert(fc.property(id, id, id, fc.string({ minLength: 1 }), fc.integer({ min: 1, max: 2 ** 45 }), (sessionId, from, to, sdp, timestamp) => {
    const m = { type: 'offer', sessionId, from, to, payload: { sdp }, timestamp };
    const r = parseMessage(JSON.stringify(m));
    assert.ok(r.ok);
    assert.deepEqual({ ...r.message }, m);
  }));
});

test('serverError: an error from server that parses as one, replyTo only when answering a message', () => {
  const plain = JSON.parse(serverError('app_1', { code: 'NODE_DRAINING', message: 'stopping', signaling: [] }, { nowMs: 5 })) as Record<string, unknown>;
  assert.equal(plain.from, 'server');
  assert.equal(plain.to, 'app_1');
  assert.equal(plain.sessionId, '');
  assert.equal(plain.timestamp, 5);
  assert.ok(!('replyTo' in plain));
  assert.match(String(plain.msgId), /^[0-9a-f-]{36}$/);
  const answer = serverError('dev_1', { code: 'FORBIDDEN', message: 'no' }, { sessionId: 's1', replyTo: 'm1' });
  const parsed = parseMessage(answer);
  assert.ok(parsed.ok);
  assert.equal(parsed.ok && parsed.message.type, 'error');
  assert.equal(JSON.parse(answer).replyTo, 'm1');
});
