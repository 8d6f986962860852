import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeInfo } from './nodeInfo.ts';
import { buildIceServers, turnUrls } from './iceServers.ts';

const node = (id: string, over: Partial<NodeInfo> = {}): NodeInfo => ({
  id, region: 'eu', roles: ['stun', 'turn'], host: '192.0.2.1', port: 3478,
  load: { allocations: 0, bps: 0 }, capacity: { allocations: 0, bps: 0 }, draining: false,
  heartbeatAt: 0, heartbeatMs: 5000, ...over,
});

const input = { secret: 's', sessionId: 'sess-1', sub: 'app-1', expiresAt: 2_000_000_000 };

test('a node with an RFC 5780 alternate address lists it as a second STUN server after its primary one', () => {
  const a = node('a', { alt: { host: '192.0.2.2', port: 3479 } });
  const b = node('b', { host: '198.51.100.1' });
  const servers = buildIceServers({ ...input, stun: [a, b], turn: a });
  assert.deepEqual(servers.slice(0, 2), [{ urls: ['stun:192.0.2.1:3478', 'stun:192.0.2.2:3479'] }, { urls: ['stun:198.51.100.1:3478'] }]);
  assert.deepEqual(servers[2]?.urls, ['turn:192.0.2.1:3478?transport=udp', 'turn:192.0.2.1:3478?transport=tcp']);
});

test('without --alt-ip a node is one STUN URL', () => {
  assert.deepEqual(buildIceServers({ ...input, stun: [node('a')], turn: undefined }), [{ urls: ['stun:192.0.2.1:3478'] }]);
});


test('TURN URLs go UDP, TCP, then TLS; the TLS one only with a TLS port', () => {
  assert.deepEqual(turnUrls({ host: '203.0.113.10', port: 3478 }), [
    'turn:203.0.113.10:3478?transport=udp', 'turn:203.0.113.10:3478?transport=tcp',
  ]);
  assert.deepEqual(turnUrls({ host: '203.0.113.10', port: 3478, tlsPort: 443 }).at(-1), 'turns:203.0.113.10:443?transport=tcp');
});

test('the turns: URL names --tls-host, the name its certificate is for; UDP and TCP keep the address', () => {
  const urls = turnUrls({ host: '203.0.113.10', port: 3478, tlsPort: 443, tlsHost: 'turn.example.com' });
  assert.deepEqual(urls, [
    'turn:203.0.113.10:3478?transport=udp', 'turn:203.0.113.10:3478?transport=tcp', 'turns:turn.example.com:443?transport=tcp',
  ]);
  assert.equal(turnUrls({ host: '2001:db8::1', port: 3478, tlsPort: 5349 }).at(-1), 'turns:[2001:db8::1]:5349?transport=tcp');
});
