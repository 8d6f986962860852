import { test } from 'node:test';
import assert from 'node:assert/strict';
import { turnUrls } from './iceServers.ts';

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
